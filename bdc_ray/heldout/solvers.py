"""The pipeline's final measurement: solvers generate for held-out problems, the sandbox scores them.

Solvers are the ones each stage produces (the base model, the all-data LoRA baseline, the
customized solver), all prompted in the one training format and decoded the same way, so the
table compares what Disentangle and Customize add over the base model and nothing else. Each
solver generates in its own Ray task (the model is loaded where the task lands, on a GPU node
when its resources ask for one); samples are written before they are scored, and a solver and
split whose summary was measured on the same weights, problems and settings is not generated again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Literal, Sequence

import ray

from bdc_ray import storage
from bdc_ray.artifacts.experts import load_manifest
from bdc_ray.artifacts.hypernet import hypernet_identity
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.eval.evaluate import Sample
from bdc_ray.eval.runner import SUMMARY_FILE, EvalOutcome, evaluate_dataset
from bdc_ray.llm.base import SamplingParams
from bdc_ray.problems.prompt_format import prompt_text
from bdc_ray.problems.types import Problem
from bdc_ray.sandbox.ray_pool import SandboxPool
from bdc_ray.timing import merge, phase, recording, stage
from bdc_ray.training import worker_device

log = logging.getLogger(__name__)

SolverKind = Literal["base", "all_data", "customized"]
SOLVER_KINDS: tuple[SolverKind, ...] = ("base", "all_data", "customized")
LOAD_PHASE = "solver loaded (imports included), in its task"
GENERATE_PHASE = "held-out completions generated, in its task"


def solver_sources(layout: RunLayout) -> dict[SolverKind, dict[str, str]]:
    """Where each solver's weights are in a run folder: what the experts manifest and the
    customize stage recorded (a solver whose stage has not run is absent). Each source also
    names the weights' identity (the adapter's fingerprint, the hypernetwork's digest): a summary
    is reused only for the weights it was measured on."""
    sources: dict[SolverKind, dict[str, str]] = {}
    try:
        manifest = load_manifest(layout.experts_dir)
    except FileNotFoundError:
        return sources
    sources["base"] = {"base_model": manifest.base_model}
    if manifest.all_data is not None:
        sources["all_data"] = {"base_model": manifest.base_model, "adapter": manifest.all_data.path,
                               "fingerprint": manifest.all_data.fingerprint}
    hypernet = hypernet_identity(layout.hypernet_dir)
    if hypernet.complete:
        sources["customized"] = {"hypernet": hypernet.folder, "fingerprint": hypernet.digest}
    return sources


def measurement_key(source: dict[str, str], problems: Sequence[Problem], sampling: SamplingParams,
                    ks: Sequence[int], tests: str) -> str:
    """SHA-256 of everything a summary depends on; a stored summary with another key is measured again."""
    payload = [source, [p.id for p in problems], sampling.model_dump(mode="json"), list(ks), tests]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _stored_summary(path: str, key: str) -> dict[str, Any] | None:
    """The summary at `path` if it was measured under `key`, else None (absent or stale)."""
    if not storage.exists(path):
        return None
    summary = storage.read_json(path)
    return summary if summary.get("key") == key else None


def generate_completions(
    kind: SolverKind, source: dict[str, str], problems: Sequence[str], sampling: SamplingParams, threads: int | None = None
) -> list[list[str]]:
    """`sampling.n` completions per problem statement from one solver, in the training prompt format."""

    if kind == "customized":
        from bdc_ray.customize import load_customized

        with phase(LOAD_PHASE):
            solver = load_customized(source["hypernet"], threads=threads)
        with phase(GENERATE_PHASE):
            return solver.generate(list(problems), sampling)
    adapters = {"all_data": source["adapter"]} if kind == "all_data" else None
    with phase(LOAD_PHASE):
        from bdc_ray.llm.hf_backend import TransformersLLM

        # The GPU this task holds (eval `resources.num_gpus`), else the CPU: never one it was not given.
        device = str(worker_device())
        llm = TransformersLLM(source["base_model"], adapters=adapters, threads=threads, name=kind, device=device)
    with phase(GENERATE_PHASE):
        texts, _ = llm.generate_with_stats([prompt_text(p) for p in problems], sampling,
                                           adapter="all_data" if adapters else None)
    return texts


def generate_timed(
    kind: SolverKind, source: dict[str, str], problems: Sequence[str], sampling: SamplingParams, threads: int | None = None
) -> tuple[list[list[str]], dict[str, Any]]:
    """`generate_completions` as a Ray task runs it: the completions, and the phases it paid
    (its solver's load, imports included, and generation) for the driver to record."""
    with recording() as timings, stage("eval"):
        texts = generate_completions(kind, source, problems, sampling, threads)
    return texts, timings.to_json()


def evaluate_solvers(
    layout: RunLayout,
    splits: dict[str, list[Problem]],
    kinds: Sequence[SolverKind],
    sampling: SamplingParams,
    pool: SandboxPool,
    ks: Sequence[int],
    ray_options: dict[str, Any],
    tests: str = "all",
) -> list[dict[str, Any]]:
    """Summaries (one per solver and split, with per-family groups) under `<run>/eval/heldout/`."""
    sources = solver_sources(layout)
    missing = [k for k in kinds if k not in sources]
    if missing:
        raise FileNotFoundError(
            f"no weights for solver(s) {missing} in {layout.root}: run the disentangle and customize stages first"
        )
    keys = {
        (kind, split): measurement_key(sources[kind], problems, sampling, ks, tests)
        for kind in kinds
        for split, problems in splits.items()
    }
    stored = {key: _stored_summary(storage.join(layout.heldout_dir(*key), SUMMARY_FILE), k) for key, k in keys.items()}
    todo = {(kind, split): splits[split] for (kind, split), summary in stored.items() if summary is None}
    task = ray.remote(generate_timed).options(**ray_options)
    threads = max(1, int(ray_options.get("num_cpus", 1)))
    pending = {
        key: task.remote(key[0], sources[key[0]], [p.prompt for p in problems], sampling, threads)
        for key, problems in todo.items()
    }
    summaries = []
    for kind in kinds:
        for split, problems in splits.items():
            out_dir = layout.heldout_dir(kind, split)
            if (kind, split) not in pending:
                summaries.append(stored[(kind, split)])
                continue
            texts, paid = ray.get(pending[(kind, split)])
            merge(paid, unit=f"{kind} / {split}")
            samples = [Sample(task_id=p.id, completion=t) for p, ts in zip(problems, texts, strict=True) for t in ts]
            storage.write_jsonl_atomic(storage.join(out_dir, "samples.jsonl"), [s.model_dump() for s in samples])
            outcome: EvalOutcome = evaluate_dataset(
                pool, f"{kind} / {split}", problems, samples, ks, tests=tests, out_dir=out_dir, group_by="family"
            )
            summaries.append({**outcome.summary, "solver": kind, "split": split, "key": keys[(kind, split)]})
            storage.write_json_atomic(storage.join(out_dir, SUMMARY_FILE), summaries[-1])
    return summaries
