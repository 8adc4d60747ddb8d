"""Running one program's tests in order, under its limits, on any executor.

The loop, the per-test limits and the verdicts are the same whether a job runs in a warm
sandbox worker or (for fidelity measurements of trusted programs) in plain `python3`
(`plain.py`): only the executor differs, so the two can be compared verdict for verdict.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from bdc_ray.problems.types import AssertTest, CallTest, StdioTest, Test
from bdc_ray.sandbox.handle import WorkerLost
from bdc_ray.sandbox.judge import describe_input, verdict
from bdc_ray.sandbox.limits import SandboxLimits
from bdc_ray.sandbox.messages import Execution, Job
from bdc_ray.sandbox.results import RunResult, TestOutcome, trim
from bdc_ray.sandbox.source import WRAPPING_SOURCES, marshalled_assert_test

Execute = Callable[[Job], Execution]


def run_tests(
    program: str, tests: Sequence[Test], limits: SandboxLimits, execute: Execute, stop_on_first_failure: bool
) -> RunResult:
    """Run `program` against `tests` (in order, at least one) and judge every test.

    Each test gets the limit of its benchmark (`limits.time_for(test.source)`), cut to what
    is left of the program's budget `program_time_s`; the budget counts from the first test.
    """
    started = time.monotonic()
    outcomes: list[TestOutcome] = []
    for index, test in enumerate(tests):
        remaining = limits.program_time_s - (time.monotonic() - started)
        if remaining <= 0.01:
            outcome = _not_run(index, test, limits)
        else:
            limit = limits.time_for(test.source)
            outcome = _run_one(execute, index, program, test, limits, limit, min(limit, remaining))
        outcomes.append(outcome)
        if stop_on_first_failure and outcome.status != "passed":
            break
    return RunResult.of(outcomes, len(tests), time.monotonic() - started)


def make_job(program: str, test: Test, limits: SandboxLimits, wall_s: float) -> Job:
    """The job of one test: what the untrusted child may see (never an expected output)."""
    common = dict(
        program=program,
        wall_s=wall_s,
        cpu_s=max(1, math.ceil(wall_s)),
        memory_bytes=limits.memory_mb << 20,
        max_processes=limits.max_processes,
        output_bytes=limits.output_bytes,
    )
    if isinstance(test, StdioTest):
        return Job(kind="stdio", stdin=test.input.encode("utf-8"), wrap=test.source in WRAPPING_SOURCES, **common)
    if isinstance(test, CallTest):
        return Job(kind="call", fn_name=test.fn_name, args=list(test.args), **common)
    assert isinstance(test, AssertTest)
    setup_code, tests_code = marshalled_assert_test(test.setup, test.code)
    return Job(kind="assert", setup=test.setup, code=test.code, setup_code=setup_code, tests_code=tests_code, **common)


def _run_one(
    execute: Execute, index: int, program: str, test: Test, limits: SandboxLimits, limit_s: float, wall_s: float
) -> TestOutcome:
    try:
        job = make_job(program, test, limits, wall_s)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        detail = f"the test code itself does not compile: {type(e).__name__}: {e}"
        return TestOutcome(index=index, kind=test.kind, status="error", time_s=0.0, detail=detail)
    try:
        execution = execute(job)
    except WorkerLost as e:
        return TestOutcome(index=index, kind=test.kind, status="error", time_s=0.0, detail=str(e))
    return verdict(index, test, job, execution, limits.float_tol, budget_cut=wall_s < limit_s)


def _not_run(index: int, test: Test, limits: SandboxLimits) -> TestOutcome:
    return TestOutcome(
        index=index,
        kind=test.kind,
        status="timeout",
        time_s=0.0,
        detail=f"not run: the program's time budget of {limits.program_time_s:g} s is used up",
        input=trim(describe_input(test)),
    )
