"""The `models:` section: where tiny models are built, and the agents (which model each one runs,
how it is prompted, where its actors live).

A tiny model is named by its build recipe (`tiny:`) instead of a path: it is trained on first use
(resolve.py: one Ray task per agent, in parallel) into `models.build_root` and reused afterwards,
so the embedded default runs on a fresh machine with nothing downloaded. Real models are named by
path or hub name (`model:`), or reached over HTTP (`backend: openai`); a GGUF checkpoint
(`gguf_file`) is converted once into `models.build_root` by a Ray task as well. Instruct-style
agents talk through their model's chat template unless `chat` says otherwise.
"""

from __future__ import annotations

import os
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bdc_ray.llm.spec import BackendSpec
from bdc_ray.resources import ResourceSpec
from bdc_ray.tiny import TinyModelConfig


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


class StudentConfig(BaseModel):
    """The model Disentangle and Customize adapt: BDC's student, learning from what the agents
    (its teachers) found, not one of them (the paper: gpt-4o-mini and Claude search, Llama-3.1-8B
    learns). It needs local weights (LoRA experts train on them)."""

    model_config = ConfigDict(extra="forbid")

    model: BackendSpec | None = Field(None, description="Local weights by path or hub name. Exactly one of model and tiny.")
    tiny: TinyModelConfig | None = Field(None, description="A tiny model built on first use from this recipe.")
    resources: ResourceSpec = Field(default_factory=ResourceSpec, description="The tiny build's Ray task (its threads: num_cpus).")

    @model_validator(mode="after")
    def _one_model(self) -> "StudentConfig":
        if (self.model is None) == (self.tiny is None):
            raise ValueError("give exactly one of `model` (a path or name) and `tiny` (a build recipe)")
        return self


class ModelsSection(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    build_root: str = Field("./runs/models", description="Where tiny models are built and cached (shared by runs).")
    agents: list[AgentConfig] = Field(default_factory=list, description="Boost's agents; two or more for mutual boosting.")
    student: StudentConfig | None = Field(
        None,
        description="The base model the experts adapt; None: the first agent's weights (the student is then its own "
        "teacher, which BDC is not about; a warning says so). stages.disentangle.experts.base_model overrides both.",
    )

    @field_validator("agents")
    @classmethod
    def _unique_names(cls, value: list[AgentConfig]) -> list[AgentConfig]:
        names = [a.name for a in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"agent names must be unique, repeated: {dupes}")
        return value

    def resolve_paths(self, resolve: Callable[[str], str]) -> None:
        """Relative paths against the config file's folder (local model folders, `~` expanded)."""
        self.build_root = resolve(self.build_root)
        models = [agent.model for agent in self.agents] + [self.student.model if self.student else None]
        for model in models:
            if model is not None and model.path.startswith((".", "~")):
                model.path = resolve(os.path.expanduser(model.path))
