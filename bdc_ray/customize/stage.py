"""The Customize stage from a run's artifacts: experts manifest + clusters + SFT rows -> hypernetwork.

    <run>/disentangle/experts/manifest.json     base model, expert folders (in cluster order)
    <run>/disentangle/clusters/clusters.json    centroids and the embedder that made them
    <run>/boost/sft.jsonl (or the synthetic suite, or a file)   the training rows
    ->  <run>/customize/hypernet/               the checkpoint CustomizedSolver loads
        <run>/customize/tune/                   results.jsonl, best_config.json, Tune's own state

The driver embeds the problems once (the clusters' embedder, cached under
<run>/customize/embeddings) and hands rows + features to the training process(es).

Resumable: a finished hypernetwork trained with the same stage config over the same experts is
kept (its metadata records both); a Tune search interrupted mid-way is restored by Tune itself.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from bdc_ray import storage
from bdc_ray.artifacts.clustering import load_clustering
from bdc_ray.artifacts.experts import load_manifest
from bdc_ray.artifacts.hypernet import is_complete
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.artifacts.sft import SFTRow, problem_rows, read_sft_rows, training_rows
from bdc_ray.customize.checkpoint import load_meta, save_checkpoint
from bdc_ray.customize.config import CustomizeConfig
from bdc_ray.customize.data import TrainingData, split_rows
from bdc_ray.customize.features import Embedder, default_embedder, routing_features
from bdc_ray.problems.suite_files import SuiteFolder
from bdc_ray.problems.synth import SynthConfig
from bdc_ray.timing import in_stage, phase

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic:"
CONFIG_KEY = "customize"
"""Key of the stage config inside a checkpoint's `settings`: what decides whether a re-run retrains."""
EXPERTS_KEY = "experts_digest"
"""Key of the experts' digest inside `settings`: a hypernetwork over retrained experts is stale."""


def load_rows(layout: RunLayout, config: CustomizeConfig, suite: SuiteFolder | None = None) -> list[SFTRow]:
    """The training rows named by `config.source`, at most `max_rows` of them (`suite`: the run's
    synthetic suite, default: the default suite in the run's data folder)."""
    if config.source == "boost":
        if not storage.exists(layout.sft_file):
            raise FileNotFoundError(f"no SFT rows at {layout.sft_file}: run Boost first, or set source to 'synthetic:train'")
        rows = training_rows(read_sft_rows(layout.sft_file))
    elif config.source.startswith(SYNTHETIC):
        suite = suite or SuiteFolder(SynthConfig(), layout.data_dir)
        rows = problem_rows(suite.read(config.source[len(SYNTHETIC) :]))
    else:
        rows = training_rows(read_sft_rows(config.source))
    if len(rows) < 2:
        raise ValueError(f"{config.source}: {len(rows)} usable rows; the hypernetwork needs at least 2")
    return rows[: config.max_rows]


def prepare(
    layout: RunLayout, config: CustomizeConfig, suite: SuiteFolder | None = None, embed: Embedder | None = None
) -> TrainingData:
    """Rows, their split and routing features, and where the base model and experts are."""
    manifest = load_manifest(layout.experts_dir)
    if not manifest.experts:
        raise ValueError("the experts manifest lists no experts: run the experts stage first")
    clustering = load_clustering(layout.clusters_dir)
    embedder = config.embedder or clustering.embedder
    if embed is None:
        embed = default_embedder(embedder, cache_dir=layout.customize_embeddings)
    train_rows, val_rows = split_rows(load_rows(layout, config, suite), config.val_fraction, config.split_seed)
    texts = sorted({r.problem for r in train_rows + val_rows})
    by_text = dict(zip(texts, routing_features(embed(texts), clustering.centroids)))
    return TrainingData(
        base_model=manifest.base_model,
        expert_names=[e.name for e in manifest.experts],
        expert_paths=[e.path for e in manifest.experts],
        expert_clusters=[e.cluster for e in manifest.experts],
        embedder=embedder,
        centroids=np.asarray(clustering.centroids, dtype=np.float32),
        train_rows=train_rows,
        train_features=np.stack([by_text[r.problem] for r in train_rows]),
        val_rows=val_rows,
        val_features=np.stack([by_text[r.problem] for r in val_rows]),
        context=config.context,
    )


def _up_to_date(layout: RunLayout, config: CustomizeConfig, mode: str) -> dict[str, Any] | None:
    folder = layout.hypernet_dir
    if not is_complete(folder):
        return None
    meta = load_meta(folder)
    if meta.settings.get(CONFIG_KEY) != {"mode": mode, **config.model_dump(mode="json")}:
        return None
    if meta.settings.get(EXPERTS_KEY) != experts_digest(layout):
        log.info("the experts changed since the hypernetwork in %s was trained; training again", folder)
        return None
    log.info("the hypernetwork in %s is up to date; skipping", folder)
    return _summary(layout, meta.metrics, resumed=True)


def experts_digest(layout: RunLayout) -> str:
    return load_manifest(layout.experts_dir).digest()


def _summary(layout: RunLayout, metrics: dict[str, Any], resumed: bool) -> dict[str, Any]:
    keep = ("best_val_loss", "initial_val_loss", "best_step", "train_examples", "val_examples")
    return {**{k: metrics.get(k) for k in keep}, "hypernet_dir": layout.hypernet_dir, "resumed": resumed,
            **({"tune": metrics["tune"]} if "tune" in metrics else {})}


@in_stage("customize")
def train_stage(
    layout: RunLayout,
    config: CustomizeConfig,
    suite: SuiteFolder | None = None,
    *,
    force: bool = False,
    embed: Embedder | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """One hypernetwork with the configured hyperparameters, trained in this process."""
    from bdc_ray.customize.train import fit_hypernet
    from bdc_ray.threads import configure_torch_threads

    if not force and (done := _up_to_date(layout, config, "train")) is not None:
        return done
    configure_torch_threads(config.train.threads)
    with phase("training rows + routing features prepared (embedder load included)"):
        data = prepare(layout, config, suite, embed)
    _, snapshot = fit_hypernet(data, config.hypernet, config.train, progress=progress)
    meta = snapshot.meta
    meta.settings[CONFIG_KEY] = {"mode": "train", **config.model_dump(mode="json")}
    meta.settings[EXPERTS_KEY] = experts_digest(layout)
    save_checkpoint(layout.hypernet_dir, snapshot.state, meta)
    return _summary(layout, meta.metrics, resumed=False)


@in_stage("customize")
def tune_stage(
    layout: RunLayout,
    config: CustomizeConfig,
    suite: SuiteFolder | None = None,
    *,
    force: bool = False,
    embed: Embedder | None = None,
) -> dict[str, Any]:
    """Ray Tune over the search space; the best trial's checkpoint becomes the hypernetwork.

    Needs Ray initialised. A search begun with another config is discarded, not restored.
    """
    from bdc_ray.customize.checkpoint import load_checkpoint
    from bdc_ray.customize.tune import run_tune

    if not force and (done := _up_to_date(layout, config, "tune")) is not None:
        return done
    folder = layout.tune_dir
    config_file = storage.join(folder, "config.json")
    wanted = config.model_dump(mode="json")
    if force or (storage.exists(config_file) and storage.read_json(config_file) != wanted):
        fs, path = storage.filesystem(storage.join(folder, "ray_results"))
        if fs.exists(path):
            fs.rm(path, recursive=True)
    storage.write_json_atomic(config_file, wanted)
    with phase("training rows + routing features prepared (embedder load included)"):
        data = prepare(layout, config, suite, embed)
    run_tune(data, config, folder, layout.hypernet_dir)
    hypernet, meta = load_checkpoint(layout.hypernet_dir)
    meta.settings[CONFIG_KEY] = {"mode": "tune", **wanted}
    meta.settings[EXPERTS_KEY] = experts_digest(layout)
    save_checkpoint(layout.hypernet_dir, hypernet.state_dict(), meta)
    return _summary(layout, meta.metrics, resumed=False)


@in_stage("customize")
def run_customize_stage(
    layout: RunLayout, config: CustomizeConfig, suite: SuiteFolder | None = None, *, force: bool = False
) -> dict[str, Any]:
    """What `bdc run` calls: a Tune search when `config.tune`, else one training."""
    if config.tune:
        return tune_stage(layout, config, suite, force=force)
    return train_stage(layout, config, suite, force=force)
