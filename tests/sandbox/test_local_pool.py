"""The sandbox pool without Ray: the warm sandbox in this process, answering like the Ray pool."""

from bdc_ray.problems.types import CallTest, StdioTest
from bdc_ray.sandbox import SandboxLimits
from bdc_ray.sandbox.local_pool import LocalPool, make_local_pool
from bdc_ray.sandbox.section import SandboxSection


def test_pool_runs_jobs_in_order_with_per_call_limits():
    pool = LocalPool(workers=2, limits=SandboxLimits(time_s=2, program_time_s=10))
    try:
        square = [CallTest(fn_name="f", args=[3], expected=9)]
        echo = [StdioTest(input="hi\n", output="hi\n")]
        jobs = [("def f(x):\n    return x * x\n", square), ("print(input())", echo), ("def f(x):\n    return x\n", square)] * 4
        assert [r.status for r in pool.run_many(jobs, desc=None)] == ["passed", "passed", "failed"] * 4
        override = pool.run_many([("import time\ntime.sleep(3)\nprint('hi')", echo)], limits=SandboxLimits(time_s=0.5, program_time_s=1), desc=None)
        assert override[0].status == "timeout"
    finally:
        pool.shutdown()


def test_the_configured_pool_holds_what_one_node_of_the_ray_pool_would():
    section = SandboxSection(actors=2, workers_per_actor=1, limits={"time_s": 2, "program_time_s": 10})
    pool = make_local_pool(section)
    try:
        assert pool.workers == 2 and len(pool.sandbox.worker_pids) == 2 and pool.sandbox.limits == section.limits
    finally:
        pool.shutdown()
    sized = make_local_pool(SandboxSection(workers_per_actor=3), workers=1)
    try:
        assert len(sized.sandbox.worker_pids) == 1
    finally:
        sized.shutdown()
