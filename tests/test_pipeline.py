"""`bdc run` on a small config and the session's local Ray cluster: data and boost, and `--only`.

The later stages run through `ray job submit` in tests/jobs/test_job_submit.py; CI runs the whole
README main command besides."""

import json
from pathlib import Path

from rich.console import Console

from bdc_ray.config import load_config
from bdc_ray.pipeline import run_pipeline


def test_data_and_boost_verify_every_reference_and_boost(ray_local, tmp_path, tiny_agents):
    cfg = load_config(
        overrides={
            "storage_path": str(tmp_path),
            "run_name": "small",
            "data": {"synthetic": {"train_per_family": 4, "heldout_per_family": 2, "heldout_comp_per_family": 1}},
            "models": tiny_agents,
            "resources": {"sandbox": {"num_cpus": 0.5}},
            "stages": {"boost": {"max_problems": 3, "search": {"rollouts": 1, "width": 1, "n_sim": 1}}},
        }
    )
    console = Console(width=160, record=True)
    result = run_pipeline(cfg, console, only=["data", "boost", "report"])
    rows = result["data"]
    names = [r["dataset"] for r in rows]
    assert "synthetic/train" in names and "apps-excerpt" in names
    assert all(r["strict_accuracy"] == 1.0 for r in rows)
    run = Path(tmp_path) / "small"
    assert (run / "data" / "heldout.jsonl").is_file()
    assert (run / "eval" / "reference" / "table.md").read_text().startswith("| dataset")
    assert (run / "config.yaml").is_file()
    assert result["boost"]["problems"] == 3 and (run / "boost" / "sft.jsonl").is_file()
    printed = console.export_text()
    assert "verified (hidden)" in printed
    report = (run / "report" / "report.md").read_text()
    assert "## Boost: MC-Tree-of-Agents" in report and (run / "report" / "boost_tree.png").is_file()
    # every stage's total and start-ups, in the file and in the closing table
    timings = json.loads((run / "timings.json").read_text())["stages"]
    assert list(timings) == ["ray", "data", "boost", "report"]
    assert all(timings[s]["total_s"] >= 0 for s in ("data", "boost", "report"))
    paid = {s: [p["name"] for p in body["phases"]] for s, body in timings.items()}
    assert paid["ray"] == ["init (a new local cluster, or joining one)"]
    assert "sandbox pool started, warm workers ready" in paid["data"]
    assert {"agent models built, converted or reused", "agent actors started, models loaded",
            "sandbox pool started, warm workers ready"} <= set(paid["boost"])
    assert sorted(p["unit"] for p in timings["boost"]["phases"] if p["unit"]) == ["tiny-a", "tiny-b"]
    assert "stage start-ups" in printed
    # a re-run of the finished stage rebuilds its rows and loads no teacher
    again = run_pipeline(cfg, Console(width=160), only=["boost"])
    assert again["boost"] == result["boost"]
    rerun = json.loads((run / "timings.json").read_text())["stages"]["boost"]["phases"]
    assert not {"agent models built, converted or reused", "agent actors started, models loaded"} & {p["name"] for p in rerun}


def test_only_reruns_one_stage_on_the_artifacts_of_a_run(ray_local, tmp_path):
    cfg = load_config(overrides={"storage_path": str(tmp_path), "run_name": "part"})
    result = run_pipeline(cfg, Console(width=160), only=["report"])
    assert list(result) == ["report"] and (tmp_path / "part" / "report" / "report.md").is_file()
    assert not (tmp_path / "part" / "boost").exists()
