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
from bdc_ray.problems.prompt_format import program_of, prompt_text
from bdc_ray.problems.types import Problem
from bdc_ray.sandbox.ray_pool import SandboxPool
from bdc_ray.timing import merge, phase, recording, stage
from bdc_ray.training import worker_device

log = logging.getLogger(__name__)

SolverKind = Literal["base", "all_data", "hard_routing", "customized"]
SOLVER_KINDS: tuple[SolverKind, ...] = ("base", "all_data", "hard_routing", "customized")
TEACHER = "teacher:"
"""Prefix of a teacher's solver name (`teacher:tiny-a`): an agent's own weights, prompted like the
student, so the table shows every model's strength beside what the student gained."""
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
        sources["hard_routing"] = {"hypernet": hypernet.folder, "fingerprint": hypernet.digest, "routing": "nearest centroid"}
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


def sample_of(task_id: str, reply: str, extra: dict[str, Any]) -> Sample:
    """A reply that fences its code runs as that code; the reply itself is kept beside it."""
    program = program_of(reply)
    return Sample(task_id=task_id, completion=program, **({"reply": reply} if program != reply else {}), **extra)


def generate_completions(
    kind: SolverKind, source: dict[str, str], problems: Sequence[str], sampling: SamplingParams, threads: int | None = None
) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """`sampling.n` completions per problem statement from one solver, in the training prompt format,
    and what each problem was routed to (`expert` under hard routing, every expert's `shares` of
    the customized solver's weights; nothing for a plain model)."""
    if kind in ("customized", "hard_routing"):
        from bdc_ray.customize import load_customized

        with phase(LOAD_PHASE):
            solver = load_customized(source["hypernet"], threads=threads)
        with phase(GENERATE_PHASE):
            if kind == "customized":
                shares = solver.shares(list(problems))
                routed = [{"shares": dict(zip(solver.expert_names, map(float, row)))} for row in shares]
                return solver.generate(list(problems), sampling), routed
            chosen = solver.router.nearest_experts(list(problems))
            texts, _ = solver.generate_with_weights([prompt_text(p) for p in problems], solver.expert_weights(chosen),
                                                    sampling)
            return texts, [{"expert": solver.expert_names[e]} for e in chosen]
    adapters = {"all_data": source["adapter"]} if kind == "all_data" else None
    with phase(LOAD_PHASE):
        from bdc_ray.llm.hf_backend import TransformersLLM

        # The GPU this task holds (eval `resources.num_gpus`), else the CPU: never one it was not given.
        device = str(worker_device())
        llm = TransformersLLM(source["base_model"], adapters=adapters, threads=threads, name=kind, device=device)
    with phase(GENERATE_PHASE):
        texts, _ = llm.generate_with_stats([prompt_text(p) for p in problems], sampling,
                                           adapter="all_data" if adapters else None)
    return texts, [{} for _ in problems]


def generate_timed(
    kind: SolverKind, source: dict[str, str], problems: Sequence[str], sampling: SamplingParams, threads: int | None = None
) -> tuple[tuple[list[list[str]], list[dict[str, Any]]], dict[str, Any]]:
    """`generate_completions` as a Ray task runs it: its result, and the phases it paid (its
    solver's load, imports included, and generation) for the driver to record."""
    with recording() as timings, stage("eval"):
        result = generate_completions(kind, source, problems, sampling, threads)
    return result, timings.to_json()


def evaluate_solvers(
    layout: RunLayout,
    splits: dict[str, list[Problem]],
    kinds: Sequence[SolverKind],
    sampling: SamplingParams,
    pool: SandboxPool,
    ks: Sequence[int],
    ray_options: dict[str, Any],
    tests: str = "all",
    teachers: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Summaries (one per solver and split, with per-family groups) under `<run>/eval/heldout/`;
    `teachers` ({agent name: model folder}) are measured too, as `teacher:<name>`."""
    sources = solver_sources(layout)
    missing = [k for k in kinds if k not in sources]
    if missing:
        raise FileNotFoundError(
            f"no weights for solver(s) {missing} in {layout.root}: run the disentangle and customize stages first"
        )
    solvers: dict[str, tuple[SolverKind, dict[str, str]]] = {kind: (kind, sources[kind]) for kind in kinds}
    solvers |= {f"{TEACHER}{name}": ("base", {"base_model": path}) for name, path in (teachers or {}).items()}
    keys = {
        (name, split): measurement_key(source, problems, sampling, ks, tests)
        for name, (_, source) in solvers.items()
        for split, problems in splits.items()
    }
    stored = {key: _stored_summary(storage.join(solver_dir(layout, *key), SUMMARY_FILE), k) for key, k in keys.items()}
    todo = {(name, split): splits[split] for (name, split), summary in stored.items() if summary is None}
    task = ray.remote(generate_timed).options(**ray_options)
    threads = max(1, int(ray_options.get("num_cpus", 1)))
    pending = {
        key: task.remote(*solvers[key[0]], [p.prompt for p in problems], sampling, threads) for key, problems in todo.items()
    }
    summaries = []
    for name in solvers:
        for split, problems in splits.items():
            out_dir = solver_dir(layout, name, split)
            if (name, split) not in pending:
                summaries.append(stored[(name, split)])
                continue
            (texts, routed), paid = ray.get(pending[(name, split)])
            merge(paid, unit=f"{name} / {split}")
            samples = [sample_of(p.id, t, extra) for p, ts, extra in zip(problems, texts, routed, strict=True) for t in ts]
            storage.write_jsonl_atomic(storage.join(out_dir, "samples.jsonl"), [s.model_dump() for s in samples])
            outcome: EvalOutcome = evaluate_dataset(
                pool, f"{name} / {split}", problems, samples, ks, tests=tests, out_dir=out_dir, group_by="family"
            )
            summaries.append({**outcome.summary, "solver": name, "split": split, "key": keys[(name, split)]})
            storage.write_json_atomic(storage.join(out_dir, SUMMARY_FILE), summaries[-1])
    return summaries


def solver_dir(layout: RunLayout, solver: str, split: str) -> str:
    """`<run>/eval/heldout/<solver>/<split>/`, a teacher's folder named `teacher-<name>`."""
    return layout.heldout_dir(solver.replace(":", "-"), split)
