"""Ray Tune over the hypernetwork's hyperparameters: the thin distributed shell around `fit_hypernet`.

Each trial is a plain function trainable (Train V2: no TorchTrainer inside Tune, PLATFORM.md)
that trains one hypernetwork in its own process and reports validation loss after every
validation pass; ASHA stops the trials that fall behind at each rung. A trial checkpoints only
when its validation loss improves, so with one checkpoint kept its latest checkpoint IS its
best state, and the best trial's checkpoint is the stage's hypernetwork.

Trials run in parallel across the cluster (`cpus_per_trial` each, torch on that many threads).
The base model and expert folders must be readable from every node (a shared file system, as
for the experts stage); the rows and their features travel through Ray's object store.

Re-running after a crash restores the experiment (Tuner.restore): finished trials are kept,
unfinished ones resume from their checkpoints.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from typing import Any

from bdc_ray import storage
from bdc_ray.artifacts.layout import TUNE_BEST_FILE, TUNE_RESULTS_FILE
from bdc_ray.customize.checkpoint import load_checkpoint, save_checkpoint
from bdc_ray.customize.config import CustomizeConfig, HyperNetSection, TrainSection, TuneSection
from bdc_ray.customize.data import TrainingData
from bdc_ray.customize.train import LOAD_PHASE
from bdc_ray.timing import Timings, record, recording, stage

log = logging.getLogger(__name__)

EXPERIMENT = "hypernet"
METRIC = "val_loss"
STARTED_AT = "started_at"
"""Metric of a trial's first report: the wall-clock time its function began (the driver subtracts its launch)."""
LOAD_S = "model_load_s"
"""Metric of a trial's first report: the seconds its base model and experts took to load."""


def search_space(section: TuneSection) -> dict[str, Any]:
    from ray import tune

    low, high = section.lr
    return {
        "lr": tune.loguniform(low, high) if low < high else low,
        "hidden": tune.choice(section.hidden),
        "temperature": tune.choice(section.temperature),
        "weight_decay": tune.choice(section.weight_decay),
        "layers": tune.choice(section.layers),
    }


def trial_settings(trial: dict[str, Any], hypernet: HyperNetSection, train: TrainSection) -> tuple[HyperNetSection, TrainSection]:
    """The stage's settings with one trial's draws in place (threads follow the trial's CPUs)."""
    return (
        hypernet.model_copy(update={k: trial[k] for k in ("hidden", "temperature", "layers")}),
        train.model_copy(update={"lr": trial["lr"], "weight_decay": trial["weight_decay"], "threads": None}),
    )


def evaluation_rounds(train: TrainSection) -> int:
    """Reports per full trial: one before training, then one per validation pass."""
    return 1 + math.ceil(train.steps / train.eval_every)


def _trial(trial: dict[str, Any], *, data: TrainingData, hypernet: dict, train: dict) -> None:
    """One Tune trial: train with the drawn settings, report after every validation pass (the
    first report also says when the trial started and how long its model load took)."""
    started_at = time.time()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ray import tune

    from bdc_ray.customize.train import fit_hypernet
    from bdc_ray.threads import configure_torch_threads
    from bdc_ray.metrics import record_training

    configure_torch_threads(None)
    hypernet_cfg, train_cfg = trial_settings(trial, HyperNetSection(**hypernet), TrainSection(**train))
    timings = Timings()

    def on_eval(point, snapshot) -> None:
        metrics = {METRIC: point.val_loss, "step": point.step}
        if point.step == 0:
            loads = [p.seconds for p in timings.phases if p.name == LOAD_PHASE]
            metrics.update({STARTED_AT: started_at, **({LOAD_S: loads[0]} if loads else {})})
        record_training("customize", tune.get_context().get_trial_id(), point.val_loss, point.step)
        if point.train_loss is not None:
            metrics["train_loss"] = point.train_loss
        if snapshot is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory(prefix="bdc-hypernet-") as folder:
            save_checkpoint(folder, snapshot.state, snapshot.meta)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    with recording(timings), stage("customize"):
        fit_hypernet(data, hypernet_cfg, train_cfg, on_eval=on_eval)


def run_tune(data: TrainingData, config: CustomizeConfig, tune_dir: str, hypernet_dir: str) -> dict[str, Any]:
    """Search, write `<tune_dir>/results.jsonl` + `best_config.json`, publish the best checkpoint.

    Needs a running Ray cluster (ray.init done by the caller). Returns the best config's summary.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    section = config.search
    trainable = tune.with_resources(
        tune.with_parameters(
            _trial, data=data, hypernet=config.hypernet.model_dump(), train=config.train.model_dump()
        ),
        section.trial_resources(),
    )
    results_root = storage.join(tune_dir, "ray_results")
    experiment = storage.join(results_root, EXPERIMENT)
    if tune.Tuner.can_restore(experiment):
        log.info("resuming the Tune experiment in %s", experiment)
        tuner = tune.Tuner.restore(experiment, trainable=trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=search_space(section),
            tune_config=tune.TuneConfig(
                metric=METRIC,
                mode="min",
                num_samples=section.num_samples,
                max_concurrent_trials=section.max_concurrent_trials,
                search_alg=BasicVariantGenerator(random_state=section.seed),
                scheduler=ASHAScheduler(
                    time_attr="training_iteration",
                    max_t=evaluation_rounds(config.train),
                    grace_period=min(section.grace_period, evaluation_rounds(config.train)),
                    reduction_factor=section.reduction_factor,
                ),
            ),
            run_config=tune.RunConfig(
                name=EXPERIMENT,
                storage_path=results_root,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                failure_config=tune.FailureConfig(max_failures=1),
                verbose=1,
            ),
        )
    launched = time.time()
    grid = tuner.fit()
    record_startup(grid, launched)
    rows = [_trial_row(result, evaluation_rounds(config.train)) for result in grid]
    if not any(r["best_val_loss"] is not None for r in rows):
        errors = [r["error"] for r in rows if r["error"]]
        raise RuntimeError(f"no Tune trial reported a validation loss; errors: {errors[:3]}")
    best = grid.get_best_result(metric=METRIC, mode="min", scope="all")
    if best.checkpoint is None:
        raise RuntimeError(f"the best trial ({best.path}) left no checkpoint")
    with best.checkpoint.as_directory() as folder:
        hypernet, meta = load_checkpoint(folder)
    best_row = next(r for r in rows if r["trial_id"] == _trial_id(best))
    meta = meta.model_copy(update={"metrics": {**meta.metrics, "tune": best_row}})
    save_checkpoint(hypernet_dir, hypernet.state_dict(), meta)
    storage.write_jsonl_atomic(storage.join(tune_dir, TUNE_RESULTS_FILE), rows)
    summary = {**best_row, "trials": len(rows), "trials_stopped_early": sum(r["stopped_early"] for r in rows),
               "hypernet_dir": hypernet_dir}
    storage.write_json_atomic(storage.join(tune_dir, TUNE_BEST_FILE), summary)
    return summary


def record_startup(grid, launched: float) -> None:
    """Tune start -> first trial running, and each trial's model load, from the trials' first
    reports (absent for trials restored from an earlier search). Later trials start when earlier
    ones free their CPUs, so only the first start is a start-up figure."""
    starts = []
    for result in grid:
        frame = result.metrics_dataframe
        if frame is None or STARTED_AT not in frame or frame[STARTED_AT].dropna().empty:
            continue
        started_at = float(frame[STARTED_AT].dropna().iloc[0])
        if started_at < launched:
            continue
        starts.append(started_at)
        if LOAD_S in frame and not frame[LOAD_S].dropna().empty:
            record(f"trial: {LOAD_PHASE}", float(frame[LOAD_S].dropna().iloc[0]), unit=_trial_id(result))
    if starts:
        record("Tune start -> first trial running", min(starts) - launched)


def _trial_id(result) -> str:
    return os.path.basename(str(result.path).rstrip("/"))


def _trial_row(result, rounds: int) -> dict[str, Any]:
    """One trial's line of results.jsonl; `rounds` is a full trial's number of reports."""
    frame = result.metrics_dataframe
    history = frame[METRIC].dropna().tolist() if frame is not None and METRIC in frame else []
    iterations = int(frame["training_iteration"].max()) if history else 0
    return {
        "trial_id": _trial_id(result),
        "config": {k: result.config[k] for k in ("lr", "hidden", "temperature", "weight_decay", "layers")},
        "best_val_loss": min(history) if history else None,
        "initial_val_loss": history[0] if history else None,
        "last_val_loss": history[-1] if history else None,
        "iterations": iterations,
        "stopped_early": result.error is None and iterations < rounds,
        "error": str(result.error) if result.error else None,
    }
