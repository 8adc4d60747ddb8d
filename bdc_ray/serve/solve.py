"""/solve: sample candidate programs for a problem, verify them on the given tests, return the best.

Generation and execution are passed in (the replica's batched generator and its sandbox), so
the choice of the best candidate is tested without Ray or HTTP. The work is a sequence of events
(`solve_events`): each candidate as soon as it is generated, each verdict as soon as its run ends,
then the answer, which a streaming request receives as they happen and a plain one as the last.
A candidate's tests start as soon as it is generated, while the others are still decoding.
Identical candidates run once: greedy or low-temperature sampling often repeats itself, and
sandbox time is the scarce part.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from bdc_ray.customize import Completion
from bdc_ray.llm.base import SamplingParams
from bdc_ray.problems.types import Test
from bdc_ray.sandbox import RunResult
from bdc_ray.serve.api import Candidate, GeneratedCandidate, RoutingResponse, SolveRequest, SolveResponse
from bdc_ray.serve.config import SolveSection
from bdc_ray.serve.engine import GenJob

Candidates = Callable[[GenJob], AsyncIterator[tuple[int, Completion]]]
"""A job's samples as they finish: (candidate index, sample)."""
RunOne = Callable[[str, list[Test]], Awaitable[RunResult]]


@dataclass(frozen=True)
class SolveEvent:
    name: Literal["candidate", "test_result", "result"]
    data: BaseModel


def solve_job(problem: str, body: SolveRequest, defaults: SolveSection) -> GenJob:
    """Greedy for one candidate unless asked otherwise; sampled candidates otherwise (n greedy copies would be one)."""
    temperature = body.temperature if body.temperature is not None else (0.0 if body.n == 1 else defaults.sample_temperature)
    sampling = SamplingParams(temperature=temperature, max_new_tokens=body.max_tokens or defaults.max_tokens, seed=body.seed)
    return GenJob.for_problem(problem, body.n, sampling)


def best_index(results: Sequence[RunResult]) -> int:
    """Most tests passed wins (a full pass first of all); the earliest candidate breaks ties."""
    return max(range(len(results)), key=lambda i: (results[i].status == "passed", results[i].pass_rate, -i))


async def solve_events(
    body: SolveRequest, problem: str, tests: list[Test], defaults: SolveSection, candidates: Candidates,
    run_one: RunOne, routing: RoutingResponse,
) -> AsyncIterator[SolveEvent]:
    runs: dict[str, asyncio.Future[RunResult]] = {}
    codes: dict[int, str] = {}
    try:
        async for index, completion in candidates(solve_job(problem, body, defaults)):
            codes[index] = completion.text
            yield SolveEvent("candidate", GeneratedCandidate(index=index, code=completion.text,
                                                             finish_reason=completion.finish_reason))
            if tests and completion.text not in runs:
                runs[completion.text] = asyncio.ensure_future(run_one(completion.text, tests))
        order = [codes[i] for i in sorted(codes)]
        if not tests:
            plain = [Candidate(index=i, code=c) for i, c in enumerate(order)]
            yield SolveEvent("result", SolveResponse(code=order[0], candidates=plain, routing=routing))
            return
        verdicts: dict[str, RunResult] = {}
        pending = {task: code for code, task in runs.items()}
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                code = pending.pop(task)
                r = verdicts[code] = task.result()
                for i in (i for i, c in enumerate(order) if c == code):
                    yield SolveEvent("test_result", Candidate(index=i, code=code, status=r.status, passed=r.passed,
                                                              total=r.total))
        results = [verdicts[c] for c in order]
        best = best_index(results)
        yield SolveEvent("result", SolveResponse(
            code=order[best],
            verified=results[best].status == "passed",
            test_results=results[best],
            candidates=[Candidate(index=i, code=c, status=r.status, passed=r.passed, total=r.total)
                        for i, (c, r) in enumerate(zip(order, results))],
            routing=routing,
        ))
    finally:
        for task in runs.values():
            task.cancel()


async def solve(
    body: SolveRequest, problem: str, tests: list[Test], defaults: SolveSection, candidates: Candidates,
    run_one: RunOne, routing: RoutingResponse,
) -> SolveResponse:
    """The answer alone (the last event)."""
    events = [e async for e in solve_events(body, problem, tests, defaults, candidates, run_one, routing)]
    return events[-1].data  # type: ignore[return-value]  # always the result
