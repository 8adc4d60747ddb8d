"""/solve: sample candidate programs for a problem, verify them on the given tests, return the best.

Generation and execution are passed in (the replica's batched generator and its sandbox), so
the choice of the best candidate is tested without Ray or HTTP. Identical candidates run once:
greedy or low-temperature sampling often repeats itself, and sandbox time is the scarce part.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from bdc_ray.llm.base import SamplingParams
from bdc_ray.problems.types import Test
from bdc_ray.sandbox import RunResult
from bdc_ray.serve.api import Candidate, RoutingResponse, SolveRequest, SolveResponse
from bdc_ray.serve.config import SolveSection
from bdc_ray.serve.engine import GenJob, GenOutput

Generate = Callable[[GenJob], Awaitable[GenOutput]]
RunTests = Callable[[list[tuple[str, list[Test]]]], Awaitable[list[RunResult]]]


def solve_job(body: SolveRequest, defaults: SolveSection) -> GenJob:
    """Greedy for one candidate unless asked otherwise; sampled candidates otherwise (n greedy copies would be one)."""
    temperature = body.temperature if body.temperature is not None else (0.0 if body.n == 1 else defaults.sample_temperature)
    sampling = SamplingParams(temperature=temperature, max_new_tokens=body.max_tokens or defaults.max_tokens, seed=body.seed)
    return GenJob.for_problem(body.problem, body.n, sampling)


def best_index(results: Sequence[RunResult]) -> int:
    """Most tests passed wins (a full pass first of all); the earliest candidate breaks ties."""
    return max(range(len(results)), key=lambda i: (results[i].status == "passed", results[i].pass_rate, -i))


async def solve(
    body: SolveRequest, defaults: SolveSection, generate: Generate, run_tests: RunTests, routing: RoutingResponse
) -> SolveResponse:
    output = await generate(solve_job(body, defaults))
    codes = output.texts
    if not body.tests:
        candidates = [Candidate(index=i, code=c) for i, c in enumerate(codes)]
        return SolveResponse(code=codes[0], candidates=candidates, routing=routing)
    unique = list(dict.fromkeys(codes))
    verdicts = dict(zip(unique, await run_tests([(code, list(body.tests)) for code in unique])))
    results = [verdicts[c] for c in codes]
    best = best_index(results)
    candidates = [
        Candidate(index=i, code=c, status=r.status, passed=r.passed, total=r.total)
        for i, (c, r) in enumerate(zip(codes, results))
    ]
    return SolveResponse(
        code=codes[best],
        verified=results[best].status == "passed",
        test_results=results[best],
        candidates=candidates,
        routing=routing,
    )
