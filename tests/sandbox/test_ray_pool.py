"""The sandbox pool as Ray actors on a real local cluster."""

from bdc_ray.problems.types import CallTest, StdioTest
from bdc_ray.sandbox import SandboxLimits
from bdc_ray.sandbox.ray_pool import SandboxPool


def test_pool_runs_jobs_in_order_across_actors(ray_local):
    pool = SandboxPool(workers_per_actor=1, limits=SandboxLimits(time_s=2, program_time_s=10), actors=2)
    try:
        square = [CallTest(fn_name="f", args=[3], expected=9)]
        echo = [StdioTest(input="hi\n", output="hi\n")]
        jobs = [("def f(x):\n    return x * x\n", square), ("print(input())", echo), ("def f(x):\n    return x\n", square)] * 4
        results = pool.run_many(jobs, chunk_size=2, desc=None)
        assert [r.status for r in results] == ["passed", "passed", "failed"] * 4
        override = pool.run_many([("import time\ntime.sleep(3)\nprint('hi')", echo)], limits=SandboxLimits(time_s=0.5, program_time_s=1), desc=None)
        assert override[0].status == "timeout"
    finally:
        pool.shutdown()


def test_the_configured_pool_awaits_single_programs_round_robin(ray_local):
    import asyncio

    from bdc_ray.sandbox.ray_pool import make_pool
    from bdc_ray.sandbox.section import SandboxSection

    section = SandboxSection(actors=2, workers_per_actor=1, limits={"time_s": 2, "program_time_s": 10})
    pool = make_pool(section, {"num_cpus": 0.25})
    try:
        assert len(pool.actors) == 2 and pool.limits == section.limits
        square = [CallTest(fn_name="f", args=[3], expected=9)]

        async def many():
            programs = ["def f(x):\n    return x * x\n", "def f(x):\n    return x\n"] * 3
            return await asyncio.gather(*(pool.arun(p, square) for p in programs))

        assert [r.status for r in asyncio.run(many())] == ["passed", "failed"] * 3
    finally:
        pool.shutdown()


def test_the_pool_starts_without_blocking_and_its_start_up_is_recorded_at_shutdown(ray_local):
    from bdc_ray import timing
    from bdc_ray.sandbox.ray_pool import STARTED_PHASE, STOPPED_PHASE, WAITED_PHASE, make_pool
    from bdc_ray.sandbox.section import SandboxSection

    section = SandboxSection(actors=1, workers_per_actor=1)
    with timing.recording() as timings, timing.stage("eval"):
        unused = make_pool(section, {"num_cpus": 0.25})
        assert timings.phases == []  # nobody waited for the warm workers
        unused.shutdown()
        used = make_pool(section, {"num_cpus": 0.25})
        assert used.run_many([("print(1)", [StdioTest(input="", output="1\n")])], desc=None)[0].status == "passed"
        used.shutdown()
    assert [(p.stage, p.name) for p in timings.phases] == [
        ("eval", STARTED_PHASE), ("eval", STOPPED_PHASE),  # never used: nothing waited
        ("eval", STARTED_PHASE), ("eval", WAITED_PHASE), ("eval", STOPPED_PHASE)]
    started, waited = timings.phases[2].seconds, timings.phases[3].seconds
    assert 0 <= waited <= started
