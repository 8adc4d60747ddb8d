"""`bdc customize train|tune` in-process, the tune command on the session's local Ray cluster."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from bdc_ray.cli.customize import app
from tests.customize.test_stage import write_run

runner = CliRunner()


@pytest.fixture
def config_file(family_setup, tmp_path):
    write_run(str(tmp_path / "runs" / "cli"), family_setup)
    path = tmp_path / "ray_config.yaml"
    path.write_text(yaml.safe_dump({"storage_path": str(tmp_path / "runs"), "run_name": "cli"}))
    return path


@pytest.mark.ray
def test_tune_searches_publishes_the_best_and_skips_a_finished_search(ray_local, config_file, tmp_path):
    args = ["tune", "--config", str(config_file), "--steps", "4", "--trials", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    tune_dir = tmp_path / "runs" / "cli" / "customize" / "tune"
    assert len((tune_dir / "results.jsonl").read_text().splitlines()) == 2
    best = json.loads((tune_dir / "best_config.json").read_text())
    meta = json.loads((tmp_path / "runs" / "cli" / "customize" / "hypernet" / "hypernet.json").read_text())
    assert meta["metrics"]["tune"]["trial_id"] == best["trial_id"]
    assert meta["settings"]["customize"]["mode"] == "tune"
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and '"resumed": true' in again.output, again.output


def test_train_then_bad_options_are_named(config_file):
    result = runner.invoke(app, ["train", "--config", str(config_file), "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert '"resumed": false' in result.output
    bad = runner.invoke(app, ["train", "--config", str(config_file), "--source", "synthetic:nope"])
    assert bad.exit_code == 2 and "synthetic splits" in bad.output
    missing = runner.invoke(app, ["train", "--config", str(config_file), "--run-name", "absent"])
    assert missing.exit_code == 2 and "no experts manifest" in missing.output
