"""Ray Tune over tiny trials on the real local cluster: results, best config, the published hypernetwork."""

from __future__ import annotations

import json

import pytest

from bdc_ray import timing

from bdc_ray.customize.checkpoint import load_checkpoint
from bdc_ray.customize.config import CustomizeConfig
from bdc_ray.artifacts.layout import TUNE_BEST_FILE, TUNE_RESULTS_FILE
from bdc_ray.customize.tune import run_tune
from tests.customize.conftest import family_rows, family_training_data

pytestmark = pytest.mark.ray


def test_a_small_search_writes_every_trial_and_publishes_the_best_checkpoint(ray_local, family_setup, tmp_path):
    data, _ = family_training_data(family_setup, family_rows(12, seed=3))
    config = CustomizeConfig(
        hypernet={"hidden": 16},
        train={"steps": 12, "eval_every": 4, "tokens_per_step": 512},
        search={"num_samples": 3, "lr": (1e-3, 3e-2), "hidden": [8, 16], "temperature": [1.0, 2.0],
                "weight_decay": [0.0], "layers": ["all", "latter"], "grace_period": 2, "seed": 1},
    )
    tune_dir, hypernet_dir = str(tmp_path / "tune"), str(tmp_path / "hypernet")
    with timing.recording() as timings:
        summary = run_tune(data, config, tune_dir, hypernet_dir)

    rows = [json.loads(line) for line in (tmp_path / "tune" / TUNE_RESULTS_FILE).read_text().splitlines()]
    assert len(rows) == 3 and summary["trials"] == 3
    assert all(r["error"] is None and r["iterations"] >= 2 for r in rows), rows
    assert all(r["config"]["layers"] in ("all", "latter") and r["config"]["hidden"] in (8, 16) for r in rows)
    best = json.loads((tmp_path / "tune" / TUNE_BEST_FILE).read_text())
    assert best["best_val_loss"] == min(r["best_val_loss"] for r in rows)
    assert best["best_val_loss"] < best["initial_val_loss"]

    hypernet, meta = load_checkpoint(hypernet_dir)
    assert meta.metrics["best_val_loss"] == pytest.approx(best["best_val_loss"])
    assert meta.metrics["tune"]["trial_id"] == best["trial_id"]
    assert meta.layers == best["config"]["layers"] and hypernet.arch.hidden == best["config"]["hidden"]
    assert meta.settings["train"]["lr"] == pytest.approx(best["config"]["lr"])
    # its start-up, from the trials' first reports: each trial's load, and Tune start -> first trial
    loads = [p for p in timings.phases if p.name == "trial: base model + experts loaded, composed"]
    assert sorted(p.unit for p in loads) == sorted(r["trial_id"] for r in rows)
    assert [p.name for p in timings.phases].count("Tune start -> first trial running") == 1
