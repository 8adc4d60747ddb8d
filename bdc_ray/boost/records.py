"""Turning a finished search into its trace record, and trace records into training data.

The search only ever saw public tests; the record adds the best program's HIDDEN-test result,
computed afterwards by trusted code, and only problems whose best program passes every hidden
test contribute SFT rows.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from bdc_ray.artifacts.sft import SFTRow
from bdc_ray.artifacts.traces import SearchResult, TraceRecord
from bdc_ray.problems.types import Problem
from bdc_ray.sandbox import RunResult


def trace_record(problem: Problem, result: SearchResult, hidden: RunResult | None, wall_s: float) -> TraceRecord:
    hidden_rate = hidden.passed / hidden.total if hidden and hidden.total else 0.0
    return TraceRecord(
        **dict(result),
        source=problem.source,
        family=problem.family,
        difficulty=problem.difficulty,
        prompt=problem.prompt,
        public_pass_rate=result.best_reward,
        hidden_pass_rate=hidden_rate,
        hidden_passed_all=bool(hidden and hidden.total and hidden.passed == hidden.total),
        hidden_status=hidden.status if hidden else None,
        wall_s=round(wall_s, 3),
    )


def sft_rows(records: Iterable[TraceRecord]) -> Iterator[SFTRow]:
    """(problem -> thoughts) and (problem + thoughts -> code) for hidden-verified problems."""
    for r in records:
        if not r.hidden_passed_all or not r.best_program.strip():
            continue
        base = {"problem_id": r.problem_id, "family": r.family, "problem": r.prompt, "agent": r.best_agent}
        if r.best_thoughts:
            yield SFTRow(**base, task="p2t", thoughts=r.best_thoughts, code=None)
        yield SFTRow(**base, task="t2c", thoughts=r.best_thoughts, code=r.best_program)


def preference_rows(records: Iterable[TraceRecord]) -> Iterator[dict[str, Any]]:
    for r in records:
        for pair in r.preferences:
            yield {"problem_id": r.problem_id, "problem": r.prompt, **pair.model_dump(mode="json")}
