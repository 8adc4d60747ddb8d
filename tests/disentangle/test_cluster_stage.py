"""The clustering step end to end: sft.jsonl -> clusters.json, assignments.jsonl, clusters.png; resume; CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import typer
from typer.testing import CliRunner

from bdc_ray import storage
from bdc_ray.cli.disentangle import app as disentangle_app
from bdc_ray.disentangle.cluster_config import ClusterConfig
from bdc_ray.disentangle.cluster_stage import run_cluster_stage
from bdc_ray.artifacts.clustering import load_clustering
from tests.disentangle.cluster_support import sft_rows_of, suite_train

PER_FAMILY = 8
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Mounted the way bdc_ray/cli/main.py mounts it: `bdc disentangle cluster ...`.
app = typer.Typer()
app.add_typer(disentangle_app, name="disentangle")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def sft(tmp_path) -> str:
    path = tmp_path / "boost" / "sft.jsonl"
    storage.write_jsonl_atomic(str(path), sft_rows_of(suite_train(PER_FAMILY)))
    return str(path)


def test_stage_clusters_problems_and_rows_inherit_their_cluster(sft, tmp_path):
    out = str(tmp_path / "clusters")
    summary = run_cluster_stage(sft, out, ClusterConfig(k=6, plot="pca"), progress=False)
    problems = 6 * PER_FAMILY
    assert (summary["k"], summary["problems"], summary["rows"], summary["resumed"]) == (6, problems, 2 * problems, False)
    assert sum(c["problems"] for c in summary["clusters"]) == problems
    assert all(c["rows"] == 2 * c["problems"] for c in summary["clusters"])
    # Clusters follow the families: most clusters are (nearly) one family.
    assert sorted(c["top_family_share"] for c in summary["clusters"])[1] >= 0.75
    assert all(c["example"] for c in summary["clusters"])

    c = load_clustering(out)
    assert len(c.ids) == problems and len(set(c.ids)) == problems
    body = json.loads(Path(out, "clusters.json").read_text())
    assert body["config"]["k"] == 6 and body["rows"] == 2 * problems and len(body["examples"][0]) == 3
    png = Path(out, "clusters.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000


def test_rerun_with_the_same_input_and_config_skips_the_work(sft, tmp_path):
    out = tmp_path / "clusters"
    cfg = ClusterConfig(k=6, plot="pca")
    run_cluster_stage(sft, str(out), cfg, progress=False)
    stamps = {name: (out / name).stat().st_mtime_ns for name in ("clusters.json", "assignments.jsonl", "clusters.png")}
    again = run_cluster_stage(sft, str(out), cfg, progress=False)
    assert again["resumed"] is True and again["k"] == 6
    assert {name: (out / name).stat().st_mtime_ns for name in stamps} == stamps

    # Another K recomputes, reading the same embeddings from the cache.
    other = run_cluster_stage(sft, str(out), ClusterConfig(k=4, plot="pca"), progress=False)
    assert other["resumed"] is False and other["k"] == 4 and load_clustering(str(out)).k == 4
    assert len(list((out / "embeddings").glob("*.npy"))) == 1

    # Other problems recompute too.
    rows = list(storage.read_jsonl(sft))[:-4]
    storage.write_jsonl_atomic(sft, rows)
    fewer = run_cluster_stage(sft, str(out), ClusterConfig(k=4, plot="pca"), progress=False)
    assert fewer["resumed"] is False and fewer["problems"] == 6 * PER_FAMILY - 2


def test_k_by_silhouette_records_every_k(sft, tmp_path):
    summary = run_cluster_stage(sft, str(tmp_path / "c"), ClusterConfig(k=None, k_min=2, k_max=7, plot="pca"), progress=False)
    assert sorted(summary["silhouette"]) == list(range(2, 8))
    assert summary["silhouette"][summary["k"]] == max(summary["silhouette"].values())


@pytest.mark.parametrize(
    ("content", "cfg", "error", "match"),
    [
        (None, ClusterConfig(), FileNotFoundError, "SFT file not found"),
        ("", ClusterConfig(), ValueError, "has no SFT rows"),
        ("{not json\n", ClusterConfig(), ValueError, "not valid JSONL"),
        ('{"problem_id": "a"}\n', ClusterConfig(), ValueError, "row 1: needs a string 'problem_id' and a non-empty 'problem'"),
        ('{"problem_id": "a", "problem": "x"}\n{"problem_id": "a", "problem": "y"}\n', ClusterConfig(), ValueError, "two different"),
        ('{"problem_id": "a", "problem": "x"}\n', ClusterConfig(), ValueError, "clustering needs at least 2"),
        ('{"problem_id": "a", "problem": "x"}\n{"problem_id": "b", "problem": "y"}\n', ClusterConfig(k=3), ValueError, r"k=3 clusters for 2 problem"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, content, cfg, error, match):
    path = tmp_path / "sft.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(error, match=match):
        run_cluster_stage(str(path), str(tmp_path / "out"), cfg, progress=False)
    assert not (tmp_path / "out" / "clusters.json").exists()


def test_config_rejects_an_empty_k_range():
    with pytest.raises(ValueError, match="k_min"):
        ClusterConfig(k_min=5, k_max=3)


def _run_config(tmp_path: Path) -> Path:
    config = tmp_path / "ray_config.yaml"
    config.write_text(f"storage_path: {tmp_path / 'runs'}\nrun_name: cli\n")
    return config


def test_cli_cluster_writes_the_artifacts_into_the_run_folder(tmp_path):
    config = _run_config(tmp_path)
    run = tmp_path / "runs" / "cli"
    storage.write_jsonl_atomic(str(run / "boost" / "sft.jsonl"), sft_rows_of(suite_train(PER_FAMILY)))
    result = CliRunner().invoke(app, ["disentangle", "cluster", "--config", str(config), "--k", "6", "--no-progress"])
    assert result.exit_code == 0, result.output
    out = run / "disentangle" / "clusters"
    assert (out / "clusters.json").is_file() and (out / "assignments.jsonl").is_file()
    assert (out / "clusters.png").read_bytes().startswith(PNG_SIGNATURE) and (out / "clusters.png").stat().st_size > 10_000
    assert "top family" in result.output and "K=6" in result.output and "written" in result.output
    again = CliRunner().invoke(app, ["disentangle", "cluster", "--config", str(config), "--k", "6", "--no-progress"])
    assert again.exit_code == 0 and "up to date" in again.output


def test_cli_cluster_with_explicit_paths(sft, tmp_path):
    out = tmp_path / "elsewhere"
    result = CliRunner().invoke(
        app, ["disentangle", "cluster", "--config", str(_run_config(tmp_path)), "--sft", sft, "--out", str(out), "--k", "3", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert load_clustering(str(out)).k == 3


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--sft", "{tmp}/missing.jsonl"], "SFT file not found"),
        (["--sft", "{tmp}/empty.jsonl"], "has no SFT rows"),
        (["--sft", "{tmp}/two.jsonl", "--k", "5"], "k=5 clusters for 2 problem"),
        (["--sft", "{tmp}/two.jsonl", "--k", "0"], "bad --k"),
    ],
)
def test_cli_cluster_reports_bad_input_with_exit_code_2(tmp_path, args, match):
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "two.jsonl").write_text('{"problem_id": "a", "problem": "x"}\n{"problem_id": "b", "problem": "y"}\n')
    argv = ["disentangle", "cluster", "--config", str(_run_config(tmp_path)), "--out", str(tmp_path / "out"), "--no-progress"]
    result = CliRunner().invoke(app, argv + [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    assert match in " ".join(result.output.split())


def test_a_synthetic_source_clusters_the_suites_reference_rows(tmp_path):
    """stages.disentangle.source: synthetic:train needs no Boost run: the suite's reference solutions
    become rows in Boost's format (<run>/disentangle/rows.jsonl), clustered like an sft.jsonl."""
    from bdc_ray.config import ConfigError, load_config
    from bdc_ray.disentangle import source_rows_file

    config = tmp_path / "ray_config.yaml"
    config.write_text(
        f"storage_path: {tmp_path / 'runs'}\nrun_name: synth\n"
        "data: {synthetic: {families: [arith, io], train_per_family: 4, heldout_per_family: 1, heldout_comp_per_family: 1}}\n"
        "stages: {disentangle: {source: 'synthetic:train'}}\n"
    )
    cfg = load_config(config)
    rows = source_rows_file(cfg.layout, cfg.stages.disentangle.source, cfg.suite)
    assert rows == cfg.layout.disentangle_rows and not Path(cfg.layout.sft_file).exists()
    written = [json.loads(line) for line in Path(rows).read_text().splitlines()]
    assert len(written) == 8 and {r["agent"] for r in written} == {"reference"}
    result = CliRunner().invoke(app, ["disentangle", "cluster", "--config", str(config), "--k", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len(load_clustering(cfg.layout.clusters_dir).ids) == 8
    assert source_rows_file(cfg.layout, "boost", cfg.suite) == cfg.layout.sft_file
    with pytest.raises(ConfigError, match="the synthetic splits are train, heldout, heldout_comp"):
        load_config(config, {"stages": {"disentangle": {"source": "synthetic:dev"}}})
    assert load_config(config, {"stages": {"disentangle": {"source": "rows.jsonl"}}}).stages.disentangle.source == str(
        tmp_path / "rows.jsonl"
    )
