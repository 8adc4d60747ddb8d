"""`bdc run` end to end on a small config and the session's local Ray cluster."""

from pathlib import Path

from rich.console import Console

from bdc_ray.config import load_config
from bdc_ray.pipeline import run_pipeline
from tests.conftest import LATER_STAGES, seed_sft_rows


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
    assert "verified (hidden)" in console.export_text()
    report = (run / "report" / "report.md").read_text()
    assert "## Boost: MC-Tree-of-Agents" in report and (run / "report" / "boost_tree.png").is_file()


def test_only_reruns_one_stage_on_the_artifacts_of_a_run(ray_local, tmp_path):
    cfg = load_config(overrides={"storage_path": str(tmp_path), "run_name": "part"})
    result = run_pipeline(cfg, Console(width=160), only=["report"])
    assert list(result) == ["report"] and (tmp_path / "part" / "report" / "report.md").is_file()
    assert not (tmp_path / "part" / "boost").exists()


def test_later_stages_run_alone_on_a_run_folder_and_print_the_final_table(ray_local, tmp_path, tiny_agents):
    """disentangle -> customize -> eval -> serve -> report with --from, on SFT rows in Boost's format
    (the suite's reference solutions: the test agents are too weak to verify enough problems)."""
    cfg = load_config(
        overrides={
            "storage_path": str(tmp_path),
            "run_name": "later",
            "models": tiny_agents,
            "resources": {"sandbox": {"num_cpus": 0.5}},
            **LATER_STAGES,
        }
    )
    seed_sft_rows(cfg)
    console = Console(width=200, record=True)
    result = run_pipeline(cfg, console, start="disentangle")
    assert list(result) == ["disentangle", "customize", "eval", "serve", "report"]
    assert result["serve"]["url"] is None and Path(result["serve"]["serve_config"]).is_file()
    assert result["disentangle"]["experts"] == 2
    solvers = {(s["solver"], s["split"]): s for s in result["eval"]}
    assert set(solvers) == {("base", "heldout"), ("all_data", "heldout"), ("customized", "heldout")}
    assert all(s["n_problems"] == 4 and "pass@1" in s for s in solvers.values())
    printed = console.export_text()
    assert "Held-out synthetic problems" in printed and "customized" in printed
    run = Path(tmp_path) / "later"
    report = (run / "report" / "report.md").read_text()
    for heading in ("## Held-out evaluation", "## Disentangle", "## Customize"):
        assert heading in report
    assert (run / "report" / "clusters.png").is_file() and (run / "report" / "ablation_heldout.png").is_file()
    # a second run of the same stages resumes: nothing is trained or generated again
    again = run_pipeline(cfg, Console(width=200), only=["eval"])
    assert [s["pass@1"] for s in again["eval"]] == [s["pass@1"] for s in result["eval"]]
