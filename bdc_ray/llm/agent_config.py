"""Configured agents: which model each one runs, how it is prompted, where its actors live.

A tiny model is named by its build recipe (`tiny:`) instead of a path: it is trained on first use
(one Ray task per agent, in parallel) into `models.build_root` and reused afterwards, so the
embedded default runs on a fresh machine with nothing downloaded. Real models are named by path
or hub name (`model:`), or reached over HTTP (`backend: openai`); a GGUF checkpoint (`gguf_file`) is
converted once into `models.build_root` by a Ray task as well. Instruct-style agents talk through
their model's chat template unless `chat` says otherwise.
"""

from __future__ import annotations

import logging
from typing import Literal

import ray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bdc_ray.llm.spec import BackendSpec
from bdc_ray.llm.tiny import TinyModelConfig, build_tiny
from bdc_ray.resources import ResourceSpec

log = logging.getLogger(__name__)


class PromptSettings(BaseModel):
    """Sampling of the agent's three jobs (see bdc_ray/boost/prompts.py)."""

    model_config = ConfigDict(extra="forbid")

    propose_temperature: float = Field(0.8, ge=0)
    code_temperature: float = Field(0.8, ge=0)
    refine_temperature: float = Field(1.0, ge=0)
    max_thought_tokens: int = Field(48, ge=1)
    max_code_tokens: int = Field(256, ge=1)
    default_prior: float = Field(0.5, gt=0, le=1, description="Prior of a proposal whose confidence is unparsable.")


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Unique agent name (logs, metrics, traces).")
    model: BackendSpec | None = Field(None, description="A model by path/name/URL. Exactly one of model and tiny.")
    tiny: TinyModelConfig | None = Field(None, description="A tiny model built on first use from this recipe.")
    style: Literal["completion", "instruct"] = Field(
        "completion",
        description="completion: models trained on the suite's text format (tiny); instruct: chat/instruction models.",
    )
    prompts: PromptSettings = Field(default_factory=PromptSettings)
    replicas: int = Field(1, ge=1, description="Actors serving this agent; calls are spread over them.")
    resources: ResourceSpec = Field(default_factory=ResourceSpec)
    batch_window_ms: float = Field(10.0, ge=0, description="How long an actor waits to batch concurrent calls.")

    @model_validator(mode="after")
    def _one_model(self) -> "AgentConfig":
        if (self.model is None) == (self.tiny is None):
            raise ValueError("give exactly one of `model` (a path, name or URL) and `tiny` (a build recipe)")
        return self


def _threads(agent: AgentConfig) -> int:
    return max(1, int(agent.resources.num_cpus))


def _agent_spec(agent: AgentConfig) -> BackendSpec:
    assert agent.model is not None
    chat = agent.model.chat
    if chat is None and agent.model.backend != "vllm":
        chat = agent.style == "instruct"
    return agent.model.model_copy(update={"name": agent.model.name or agent.name, "chat": chat})


def resolve_backends(agents: list[AgentConfig], build_root: str) -> dict[str, BackendSpec]:
    """The backend of every agent; tiny models missing from `build_root` are built, and GGUF
    checkpoints converted there, in parallel Ray tasks (each once: later runs reuse the folder)."""
    build = ray.remote(build_tiny)
    pending = {
        a.name: build.options(num_cpus=_threads(a), max_retries=1).remote(a.tiny, build_root, threads=None, progress=False)
        for a in agents
        if a.tiny is not None
    }
    convert = ray.remote(BackendSpec.resolved)
    converting = {
        a.name: convert.options(num_cpus=_threads(a), max_retries=1).remote(_agent_spec(a), build_root)
        for a in agents
        if a.model is not None and a.model.gguf_parts
    }
    if pending or converting:
        log.info("models for %s: building, converting or reusing under %s", ", ".join([*pending, *converting]), build_root)
    paths = dict(zip(pending, ray.get(list(pending.values()))))
    converted = dict(zip(converting, ray.get(list(converting.values()))))
    specs = {}
    for a in agents:
        if a.name in converted:
            specs[a.name] = converted[a.name]
        elif a.model is not None:
            specs[a.name] = _agent_spec(a)
        else:
            specs[a.name] = BackendSpec(backend="transformers", path=str(paths[a.name]), name=a.name, threads=_threads(a))
    return specs
