"""Launching every expert run at once: one Ray Train run (TorchTrainer) per cluster, plus the
all-data baseline, all sharing the cluster.

Concurrency follows Ray Train V2's own guidance for several runs (one `fit()` per driver, resources
contended at the placement-group level): each run's `fit()` is called from its own driver thread,
so every run has its own controller actor, storage folder and failure handling, and a run that
fails does not stop the others. A run can only start when ALL its workers fit at once, so runs
beyond what the cluster holds simultaneously would only park idle processes (each run has a
controller and a placement-group cleaner actor of its own, ray-project/ray#65443); as the Train
docs advise for Tune (`max_concurrent_trials`), at most `scaling.max_concurrent_runs` are in
flight (default: as many as fit), the others queue.

Resuming happens at two levels. Within a run, Ray Train restarts a failed worker group from the
run's last checkpoint (`max_failures`). Across invocations, a run whose adapter folder and
manifest entry exist with the same fingerprint (config, base model and data) is skipped, and an
unfinished one is picked up by Ray Train from its stored checkpoints, since it keeps its run name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bdc_ray import storage
from bdc_ray.artifacts.clustering import load_clustering
from bdc_ray.artifacts.experts import ALL_DATA, ExpertEntry, ExpertManifest, LoraShape, TrainedAdapter, expert_name
from bdc_ray.artifacts.experts import load_manifest, manifest_path, save_manifest
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.artifacts.sft import SFTRow, prompt_response, read_sft_rows, training_rows
from bdc_ray.disentangle.expert_config import ExpertsConfig, ScalingSection
from bdc_ray.disentangle.expert_worker import ADAPTER_DIR, SUMMARY_FILE, train_expert
from bdc_ray.disentangle.lora_train import LoopState
from bdc_ray.timing import in_stage, record

log = logging.getLogger(__name__)

TRAIN_STORAGE = "_ray_train"
"""Ray Train's storage (run folders with their checkpoints) under the experts folder."""

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")

_PER_RUN_DEFAULTS = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}


@dataclass(frozen=True)
class RunSpec:
    """One run to train: an expert (cluster and centroid set) or the all-data baseline."""

    name: str
    rows: list[SFTRow]
    cluster: int | None = None
    centroid: list[float] | None = None


def plan_runs(
    records_by_cluster: dict[int, list[SFTRow]], all_rows: Sequence[SFTRow], centroids, min_rows: int = 1
) -> list[RunSpec]:
    """An expert per cluster with at least `min_rows` training rows, then the all-data baseline."""
    centroids = np.asarray(centroids, dtype=np.float64)
    specs = []
    for cluster in sorted(records_by_cluster):
        rows = training_rows(records_by_cluster[cluster])
        if not 0 <= cluster < len(centroids):
            raise ValueError(f"cluster {cluster} has no centroid (there are {len(centroids)})")
        if len(rows) < min_rows:
            log.warning("cluster %d has %d training rows (< min_rows %d): no expert", cluster, len(rows), min_rows)
            continue
        specs.append(RunSpec(expert_name(cluster), rows, cluster, [float(x) for x in centroids[cluster]]))
    rows = training_rows(all_rows)
    if not rows:
        raise ValueError("no SFT rows to train on: the all-data baseline would be empty")
    specs.append(RunSpec(ALL_DATA, rows))
    return specs


def fingerprint(spec: RunSpec, base_model: str, cfg: ExpertsConfig) -> str:
    """What decides a run's adapter: the training settings, the base model, the data, and the
    world size (DeepSpeed shards cannot be reloaded by another number of ranks). Resources,
    failure limits and concurrency do not enter: they change how a run is scheduled, not what it trains."""
    settings = cfg.model_dump(mode="json", exclude={"scaling", "worker_env", "verify_adapter", "min_rows"})
    payload = {
        "settings": settings,
        "num_workers": cfg.scaling.num_workers,
        "base_model": base_model,
        "pairs": [prompt_response(r) for r in spec.rows],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def train_experts(
    records_by_cluster: dict[int, list[SFTRow]],
    all_rows: Sequence[SFTRow],
    centroids,
    base_model_path: str,
    cfg: ExpertsConfig,
    out_dir: str,
    *,
    progress: bool = True,
) -> ExpertManifest:
    """Train (or reuse) one LoRA expert per cluster and the all-data baseline; returns the manifest.

    Writes `<out_dir>/<name>/` peft folders and `<out_dir>/manifest.json` (updated as each run
    finishes, so an interrupted stage keeps what it finished). Raises after all runs ended when
    any failed, naming them; the manifest then holds the ones that succeeded.
    """
    import ray
    from tqdm.auto import tqdm

    specs = plan_runs(records_by_cluster, all_rows, centroids, cfg.min_rows)
    manifest = ExpertManifest(base_model=base_model_path, lora=LoraShape(**cfg.lora.model_dump()))
    previous = _previous_manifest(out_dir)
    todo: list[tuple[RunSpec, str]] = []
    for spec in specs:
        key = fingerprint(spec, base_model_path, cfg)
        done = previous.get(spec.name)
        if done is not None and done.fingerprint == key and _adapter_complete(done.path):
            manifest.record(done)
            log.info("%s: finished earlier, skipped", spec.name)
        else:
            todo.append((spec, key))
    save_manifest(manifest, out_dir)
    if not todo:
        return manifest

    if not ray.is_initialized():
        raise RuntimeError("train_experts needs a Ray cluster: call ray.init() (or bdc_ray.ray_session.init_ray) first")
    concurrency = min(len(todo), cfg.scaling.max_concurrent_runs or cfg.scaling.runs_that_fit(ray.cluster_resources()))
    log.info("training %s (%d at a time)", ", ".join(s.name for s, _ in todo), concurrency)
    failures: dict[str, BaseException] = {}
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bdc-expert") as pool, tqdm(
        total=len(specs), initial=len(specs) - len(todo), desc="experts", disable=not progress, dynamic_ncols=True
    ) as bar:
        futures: dict[Future, RunSpec] = {
            pool.submit(_train_one, spec, key, base_model_path, cfg, out_dir): spec for spec, key in todo
        }
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                spec = futures[future]
                bar.update(1)
                try:
                    entry = future.result()
                except Exception as err:  # noqa: BLE001 - one failed run must not discard the others
                    log.error("%s failed: %s", spec.name, err)
                    failures[spec.name] = err
                    continue
                manifest.record(entry)
                save_manifest(manifest, out_dir)
                bar.set_postfix(last=f"{spec.name} loss {entry.final_loss}", refresh=False)
    if failures:
        names = ", ".join(f"{name} ({type(err).__name__}: {err})" for name, err in failures.items())
        raise RuntimeError(f"{len(failures)} expert run(s) failed: {names}") from next(iter(failures.values()))
    return manifest


def _previous_manifest(out_dir: str) -> dict[str, TrainedAdapter]:
    if not storage.exists(manifest_path(out_dir)):
        return {}
    return load_manifest(out_dir).finished()


def _adapter_complete(path: str) -> bool:
    return all(storage.exists(storage.join(path, f)) for f in ADAPTER_FILES)


def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def _worker_env(cfg: ExpertsConfig) -> dict[str, str]:
    env = dict(_PER_RUN_DEFAULTS)
    # The DeepSpeed comm op is JIT-compiled once (~140 s on 2 cores) into this cache: keep the
    # driver's location when it has one, so workers never compile it again elsewhere.
    if os.environ.get("TORCH_EXTENSIONS_DIR"):
        env["TORCH_EXTENSIONS_DIR"] = os.environ["TORCH_EXTENSIONS_DIR"]
    env.update(cfg.worker_env)
    return env


def _loop_config(spec: RunSpec, base_model: str, cfg: ExpertsConfig, pairs_ref) -> dict[str, Any]:
    cpus = cfg.scaling.resources_per_worker.get("CPU", 1.0)
    return {
        "name": spec.name,
        "cfg": cfg.model_dump(mode="json"),
        "base_model": base_model,
        "pairs": pairs_ref,
        "threads": max(1, int(cpus)),
    }


def scaling_config(scaling: ScalingSection):
    """The Ray Train ScalingConfig of every expert run (Ray validates GPU against use_gpu here)."""
    from ray.train import ScalingConfig

    return ScalingConfig(
        num_workers=scaling.num_workers,
        use_gpu=scaling.use_gpu,
        resources_per_worker=dict(scaling.resources_per_worker),
    )


def _train_one(spec: RunSpec, key: str, base_model: str, cfg: ExpertsConfig, out_dir: str) -> TrainedAdapter:
    """One Ray Train run, then its adapter copied into `out_dir` and its manifest entry built."""
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    pairs_ref = ray.put([prompt_response(r) for r in spec.rows])
    trainer = TorchTrainer(
        train_expert,
        train_loop_config=_loop_config(spec, base_model, cfg, pairs_ref),
        scaling_config=scaling_config(cfg.scaling),
        torch_config=TorchConfig(backend=cfg.scaling.torch_backend),
        run_config=RunConfig(
            # The fingerprint in the name: a changed config or data never resumes another's checkpoints.
            name=f"{spec.name}-{key[:12]}",
            storage_path=_absolute(storage.join(out_dir, TRAIN_STORAGE)),
            failure_config=FailureConfig(max_failures=cfg.scaling.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
            worker_runtime_env={"env_vars": _worker_env(cfg)},
        ),
    )
    launched = time.time()
    result = trainer.fit()
    returned = time.time()
    if result.checkpoint is None:
        raise RuntimeError(f"{spec.name}: the run ended without a checkpoint")
    with result.checkpoint.as_directory() as folder:
        folder = Path(folder)
        if not (folder / SUMMARY_FILE).exists():
            raise RuntimeError(f"{spec.name}: the last checkpoint {result.checkpoint.path} is not a final one")
        summary = json.loads((folder / SUMMARY_FILE).read_text())
        record_startup(spec.name, launched, returned, summary.get("startup_marks"), cfg.deepspeed)
        path = storage.join(out_dir, spec.name)
        _publish_dir(folder / ADAPTER_DIR, path)
    state = LoopState.from_dict(summary["loop"])
    common = dict(
        name=spec.name,
        path=path,
        size=summary["size"],
        examples=summary["examples"],
        validation_examples=summary.get("validation_examples", 0),
        validation_curve=state.validation,
        best_step=state.best_step,
        validation_loss=state.best_validation_loss,
        final_loss=state.final_loss,
        steps=state.step,
        loss_curve=state.loss_curve(),
        resumed_from=state.resumed_from,
        checkpoint_shards=summary["checkpoint_shards"],
        reload_max_abs_diff=summary["reload_max_abs_diff"],
        train_s=summary["train_s"],
        samples_per_s=summary["samples_per_s"],
        fingerprint=key,
    )
    if spec.cluster is None:
        return TrainedAdapter(**common)
    return ExpertEntry(**common, cluster=spec.cluster, centroid=spec.centroid)


STARTUP_PHASES = (
    ("launched", "process_created", "Train controller + placement group + worker process spawned"),
    ("process_created", "entered", "worker process set-up (Ray worker, imports, process group) -> train fn"),
    ("entered", "model_loaded", "tokenizer + base model + LoRA load"),
    ("model_loaded", "engine_ready", "data + optimizer + {engine}"),
    ("engine_ready", "first_step", "first step"),
    ("launched", "first_step", "launch -> first step done (all of the above)"),
    ("last_step", "final_saved", "last step -> adapter saved and reload-checked"),
    ("final_saved", "returned", "final checkpoint reported -> fit() returned (controller, teardown)"),
)
"""One expert run's fixed costs, between the driver's launch/return and rank 0's wall-clock marks
(a run on another node reads across two clocks: NTP keeps them within milliseconds)."""


def record_startup(name: str, launched: float, returned: float, marks: dict[str, float] | None, deepspeed: bool) -> None:
    """The phases of one run from its marks; none when the marks are older than this launch (the
    run had finished before, and this fit() only found its final checkpoint)."""
    if not marks or marks.get("entered", 0.0) < launched:
        return
    points = {**marks, "launched": launched, "returned": returned}
    engine = "DeepSpeed initialize" if deepspeed else "DDP prepare"
    for start, end, label in STARTUP_PHASES:
        if start in points and end in points:
            record(f"expert run: {label.format(engine=engine)}", points[end] - points[start], unit=name)


def _publish_dir(local: Path, target: str) -> None:
    """Copy a finished local folder to `target`; locally through a sibling and a rename, so the
    folder is never seen half-written (on object stores the manifest entry marks completion)."""
    fs, path = storage.filesystem(target)
    if "://" not in target:
        target_path = Path(path)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target_path.name}.", dir=target_path.parent))
        shutil.copytree(local, staging, dirs_exist_ok=True)
        if target_path.exists():
            shutil.rmtree(target_path)
        os.replace(staging, target_path)
        return
    if fs.exists(path):
        fs.rm(path, recursive=True)
    fs.put(str(local), path, recursive=True)


@in_stage("disentangle")
def run_train_stage(
    layout: RunLayout, cfg: ExpertsConfig, base_model: str, *, progress: bool = True, sft_file: str | None = None
) -> ExpertManifest:
    """`<run>/boost/sft.jsonl` (or `sft_file`, the rows the clustering read) + `<run>/disentangle/clusters/`
    -> `<run>/disentangle/experts/`.

    Every SFT row trains the expert of its problem's cluster (and the all-data baseline) on
    `base_model` (the caller resolves the default: models.student, else the first agent's weights); the caller has
    joined or started the Ray cluster.
    """
    sft_file = sft_file or layout.sft_file
    if not storage.exists(sft_file):
        raise FileNotFoundError(f"SFT file not found: {sft_file} (run `bdc boost` first)")
    rows = read_sft_rows(sft_file)
    clustering = load_clustering(layout.clusters_dir)
    try:
        by_cluster = rows_by_cluster(rows, clustering.ids, clustering.labels, clustering.k)
    except ValueError as err:
        raise ValueError(f"{sft_file} vs {layout.clusters_dir}: {err}") from None
    return train_experts(by_cluster, rows, clustering.centroids, base_model, cfg, layout.experts_dir, progress=progress)


def rows_by_cluster(rows: Sequence[SFTRow], ids: Sequence[str], labels, k: int) -> dict[int, list[SFTRow]]:
    """Every row goes to its problem's cluster (problems are clustered, rows are trained on)."""
    cluster_of = dict(zip(ids, (int(label) for label in labels)))
    unassigned = sorted({r.problem_id for r in rows} - cluster_of.keys())
    if unassigned:
        raise ValueError(
            f"{len(unassigned)} problem(s) have no cluster (e.g. {unassigned[0]!r}): the clustering is older "
            "than the SFT rows, run `bdc disentangle cluster` again"
        )
    grouped: dict[int, list[SFTRow]] = {cluster: [] for cluster in range(k)}
    for row in rows:
        grouped[cluster_of[row.problem_id]].append(row)
    return grouped
