"""`bdc eval`: samples scored by a sandbox pool, results written to storage.

The pool is either the Ray sandbox pool (a cluster) or the in-process one (one machine); both
answer `run_many` the same way, so scoring never imports Ray itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from bdc_ray import storage
from bdc_ray.eval.evaluate import Job, Sample, TestSelection, evaluate_samples, summarize
from bdc_ray.problems.types import Problem
from bdc_ray.sandbox import RunResult

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"


class BatchPool(Protocol):
    """What scoring needs of a pool: `ray_pool.SandboxPool` and `local_pool.LocalPool` both are one."""

    def run_many(self, jobs: Sequence[Job], *, desc: str | None = ...) -> list[RunResult]: ...


@dataclass
class EvalOutcome:
    name: str
    summary: dict[str, Any]
    records: list[dict[str, Any]]
    errors: list[str] = field(default_factory=list)


def evaluate_dataset(
    pool: BatchPool,
    name: str,
    problems: Sequence[Problem],
    samples: Sequence[Sample],
    ks: Sequence[int],
    tests: TestSelection = "all",
    out_dir: str | None = None,
    group_by: str | None = "difficulty",
) -> EvalOutcome:
    """Score `samples`; with `out_dir`, write `results.jsonl` and `summary.json` there atomically."""
    records, errors = evaluate_samples(
        problems, samples, lambda jobs: pool.run_many(jobs, desc=f"eval {name}"), tests=tests
    )
    summary = {"dataset": name, "tests": tests, **summarize(records, ks, group_by=group_by)}
    if errors:
        summary["sample_errors"] = errors
    if out_dir:
        storage.write_jsonl_atomic(storage.join(out_dir, RESULTS_FILE), records)
        storage.write_json_atomic(storage.join(out_dir, SUMMARY_FILE), summary)
    return EvalOutcome(name, summary, records, errors)
