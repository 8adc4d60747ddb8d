"""Agents -> backends: tiny models built (or reused) and GGUF checkpoints converted (or reused) in
Ray tasks, other real models passed through; instruct agents default to their model's chat template.

Also the base model of the LoRA experts when no `stages.disentangle.experts.base_model` is
configured: the `models.student` (built like a tiny agent when it is a recipe), else the first
agent's weights.
"""

from __future__ import annotations

import logging
from typing import Sequence

from bdc_ray.llm.spec import BackendSpec
from bdc_ray.models.config import AgentConfig, ModelsSection
from bdc_ray.tiny import build_tiny, built_tiny

log = logging.getLogger(__name__)


def _threads(agent: AgentConfig) -> int:
    return max(1, int(agent.resources.num_cpus))


def _agent_spec(agent: AgentConfig) -> BackendSpec:
    """The agent's own backend spec, named after it, with `chat` on for instruct agents unless set."""
    assert agent.model is not None
    chat = agent.model.chat
    if chat is None and agent.model.backend != "vllm":
        chat = agent.style == "instruct"
    return agent.model.model_copy(update={"name": agent.model.name or agent.name, "chat": chat})


def resolve_backends(agents: list[AgentConfig], build_root: str) -> dict[str, BackendSpec]:
    """The backend of every agent; tiny models missing from `build_root` are built, and GGUF
    checkpoints converted there, in parallel Ray tasks (each once: later runs reuse the folder).
    A finished build is found here, without a task: on an autoscaling cluster a task would start
    a node only to say the model is already there."""
    import ray

    built = {a.name: path for a in agents if a.tiny is not None and (path := built_tiny(a.tiny, build_root))}
    to_build = [a for a in agents if a.tiny is not None and a.name not in built]
    build = ray.remote(build_tiny) if to_build else None
    pending = {
        a.name: build.options(num_cpus=_threads(a), max_retries=1).remote(a.tiny, build_root, threads=None, progress=False)
        for a in to_build
    }
    to_convert = [a for a in agents if a.model is not None and a.model.gguf_parts]
    convert = ray.remote(BackendSpec.resolved) if to_convert else None
    converting = {
        a.name: convert.options(num_cpus=_threads(a), max_retries=1).remote(_agent_spec(a), build_root)
        for a in to_convert
    }
    if pending or converting:
        log.info("models for %s: building, converting or reusing under %s", ", ".join([*pending, *converting]), build_root)
    paths = built | (dict(zip(pending, ray.get(list(pending.values())))) if pending else {})
    converted = dict(zip(converting, ray.get(list(converting.values())))) if converting else {}
    specs = {}
    for a in agents:
        if a.name in converted:
            specs[a.name] = converted[a.name]
        elif a.model is not None:
            specs[a.name] = _agent_spec(a)
        else:
            specs[a.name] = BackendSpec(backend="transformers", path=str(paths[a.name]), name=a.name, threads=_threads(a))
    return specs


def first_agent_model(agents: Sequence[AgentConfig], build_root: str) -> str:
    """The first agent's weights (a tiny agent is built, or reused, under `build_root`)."""
    if not agents:
        raise ValueError("no base model: set models.student, stages.disentangle.experts.base_model or models.agents")
    spec = resolve_backends([agents[0]], build_root)[agents[0].name]
    if spec.backend != "transformers":
        raise ValueError(
            f"agent {agents[0].name!r} is reached over {spec.backend}: LoRA experts need local weights, "
            "set models.student"
        )
    return spec.path


def local_agent_models(agents: Sequence[AgentConfig], build_root: str) -> dict[str, str]:
    """{agent name: model folder} of every agent whose weights are local (transformers; tiny ones
    built and GGUF ones converted first); agents behind an API or vLLM are left out."""
    specs = resolve_backends(list(agents), build_root)
    return {name: spec.resolved().path for name, spec in specs.items() if spec.backend == "transformers"}


def student_model(models: ModelsSection) -> str:
    """The base model the experts adapt when none is configured: `models.student` (a recipe is
    built, or reused, under `build_root`), else the first agent's weights, with a warning."""
    student = models.student
    if student is None:
        log.warning("models.student is not set: the experts adapt the first agent's weights, the student is its "
                    "own teacher")
        return first_agent_model(models.agents, models.build_root)
    source = AgentConfig(name="student", model=student.model, tiny=student.tiny, resources=student.resources)
    spec = resolve_backends([source], models.build_root)["student"]
    if spec.backend != "transformers":
        raise ValueError(f"models.student is reached over {spec.backend}: LoRA experts need local weights")
    return spec.path
