"""Paired differences between solvers, read back from their stored per-problem results."""

from __future__ import annotations

import pytest

from bdc_ray import storage
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.eval.runner import RESULTS_FILE
from bdc_ray.heldout.differences import differences_table, per_problem, solver_differences
from bdc_ray.heldout.solvers import solver_dir


def _results(run: RunLayout, solver: str, split: str, passed: list[bool]) -> dict:
    records = [{"task_id": f"p{i}", "status": "passed" if ok else "failed"} for i, ok in enumerate(passed)]
    storage.write_jsonl_atomic(storage.join(solver_dir(run, solver, split), RESULTS_FILE), records)
    return {"solver": solver, "split": split}


def test_each_pair_of_measured_solvers_gets_its_paired_interval(tmp_path):
    run = RunLayout(str(tmp_path / "run"))
    n = 40
    summaries = [
        _results(run, "base", "heldout", [i < 10 for i in range(n)]),       # 25%
        _results(run, "all_data", "heldout", [i < 20 for i in range(n)]),   # 50%: +25 on the same problems
        _results(run, "customized", "heldout", [i < 20 for i in range(n)]),  # the same problems as all_data
        _results(run, "teacher:tiny-a", "heldout", [True] * n),             # not a pair of the chain
    ]
    rows = {r["difference"]: r for r in solver_differences(run, summaries)}
    assert set(rows) == {"all_data-base", "customized-all_data", "customized-base"}  # no hard_routing measured
    assert rows["all_data-base"]["mean"] == pytest.approx(25.0) and rows["all_data-base"]["problems"] == n
    assert 10 < rows["all_data-base"]["ci_low"] < 25 < rows["all_data-base"]["ci_high"] < 40
    same = rows["customized-all_data"]
    assert (same["mean"], same["ci_low"], same["ci_high"]) == (0.0, 0.0, 0.0)  # identical verdicts: no spread
    assert per_problem(run, "teacher:tiny-a", "heldout")["p3"] == 1.0  # its folder is teacher-tiny-a
    header, cells = differences_table(list(rows.values()))
    assert header[0] == "difference" and cells[0][3] == "+25.0"
