"""How far apart two solvers are on the same held-out problems: a paired bootstrap interval per pair.

Every solver answers the same problems, so the unit resampled is the problem and its own
difference (eval/bootstrap.py). The pairs are BDC's chain of claims: the all-data LoRA over the
base student, hard routing to one expert per cluster over the all-data LoRA, the hypernetwork's
input-aware mix over hard routing, and the customized solver over the all-data LoRA and the base.
With 20 problems per family an interval spans tens of points: the table says how much a run of
this size can tell, which is why benchmarks/learning.py measures on hundreds of problems.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

from bdc_ray import storage
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.eval.bootstrap import paired_bootstrap
from bdc_ray.eval.runner import RESULTS_FILE
from bdc_ray.heldout.solvers import solver_dir

PAIRS: tuple[tuple[str, str], ...] = (
    ("all_data", "base"),
    ("hard_routing", "all_data"),
    ("customized", "hard_routing"),
    ("customized", "all_data"),
    ("customized", "base"),
)


def per_problem(layout: RunLayout, solver: str, split: str) -> dict[str, float]:
    """{problem id: share of its samples that passed} from a solver's stored results."""
    passed: dict[str, list[bool]] = defaultdict(list)
    for record in storage.read_jsonl(storage.join(solver_dir(layout, solver, split), RESULTS_FILE)):
        passed[record["task_id"]].append(record["status"] == "passed")
    return {task: sum(v) / len(v) for task, v in passed.items()}


def solver_differences(layout: RunLayout, summaries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per split and pair of measured solvers: mean difference and its 95% interval, in points."""
    measured = defaultdict(set)
    for s in summaries:
        measured[s["split"]].add(s["solver"])
    rows = []
    for split, solvers in measured.items():
        for a, b in PAIRS:
            if a not in solvers or b not in solvers:
                continue
            first, second = per_problem(layout, a, split), per_problem(layout, b, split)
            common = sorted(set(first) & set(second))
            interval = paired_bootstrap([first[p] - second[p] for p in common]).scaled(100)
            rows.append({"split": split, "difference": f"{a}-{b}", "problems": len(common),
                         "mean": interval.mean, "ci_low": interval.low, "ci_high": interval.high})
    return rows


def differences_table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) in points, for the console and report.md."""
    header = ["difference", "split", "problems", "mean (points)", "95% interval"]
    return header, [[r["difference"], r["split"], str(r["problems"]), f"{r['mean']:+.1f}",
                     f"[{r['ci_low']:+.1f}, {r['ci_high']:+.1f}]"] for r in rows]
