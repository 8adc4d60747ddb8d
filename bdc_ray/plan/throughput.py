"""The throughput figures `bdc plan` turns work into time with: one named table, each figure with
its unit and its source.

Why one table: an estimate is only as good as the figures under it, so every figure is named,
says what it counts and where it comes from, and can be replaced (`bdc plan --throughput
FILE`, a YAML mapping of names to a number or to {value, source}). CPU figures were measured on
this project's 2-core machine with its tiny models (README); nothing here has run on a GPU, so
the GPU figures are stated assumptions for a 7B model in bf16 on one A10G (the GPU of
cluster/aws.yaml's g5.2xlarge), each beside the public figure it was scaled from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ThroughputError(ValueError):
    """A throughput file that cannot be used; the message names the figure."""


class Figure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(gt=0)
    unit: str
    source: str


def _figure(value: float, unit: str, source: str) -> Any:
    """A field whose default is this figure."""
    return Field(default_factory=lambda: Figure(value=value, unit=unit, source=source))


class Throughput(BaseModel):
    """Every figure the estimates use; the names are what a --throughput file overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vllm_generation_gpu: Figure = _figure(
        600, "tokens/s per agent replica (vLLM, 7B bf16, one A10G, many requests in flight)",
        "assumption: Mistral-7B on vLLM gave 975-1,190 output tokens/s at 32-48 concurrent requests on an RTX 4090 "
        "(24 GB, 1,008 GB/s; mushfiqrahman.dev, 'Benchmarking Mistral-7B on RTX 4090'), scaled to the A10G's "
        "600 GB/s memory bandwidth",
    )
    hf_generation_gpu: Figure = _figure(
        200, "tokens/s per generation task or Serve replica (transformers generate, 7B bf16, one A10G, batched)",
        "assumption: transformers decoded Llama-2-7B on one A10 at about 34 ms per token at batch 1, ~29 tokens/s "
        "(InternLM/lmdeploy#210); batches of samples taken as ~7x that",
    )
    lora_training_gpu: Figure = _figure(
        2000, "tokens/s per Train worker or Tune trial (LoRA / hypernetwork over a frozen bf16 7B base, one A10G)",
        "assumption: ms-swift trained qwen-7b-chat LoRA (bf16, flash-attn) at 4.31 samples/s of at most 2,048 tokens "
        "on one A100 (modelscope/ms-swift docs/source_en/LLM/Benchmark.md), at most ~8,800 tokens/s; an A10G has "
        "a quarter to two fifths of an A100's bf16 tensor throughput, the lower end taken",
    )
    tiny_generation_cpu: Figure = _figure(
        1323, "tokens/s per actor or task (a tiny model, one CPU thread, batched calls)",
        "measured here: an agent actor with 16 concurrent callers (README, Tiny models; benchmarks/agent_batching.py)",
    )
    model_generation_cpu: Figure = _figure(
        7.3, "tokens/s per actor or task (a real 135M model on one CPU thread)",
        "measured here: SmolLM2-135M-Instruct writing 164 HumanEval samples (README, Real models)",
    )
    tiny_training_cpu: Figure = _figure(
        6400, "tokens/s per training worker (a tiny model, one CPU thread)",
        "measured here: the tiny build, 750 steps of 2,048 tokens in about 4 minutes on one thread (README, Tiny "
        "models); a tiny LoRA expert ran 78 samples/s on one CPU worker (README, Ray Train overhead)",
    )
    model_training_cpu: Figure = _figure(
        45, "tokens/s per training worker (a real 135M model on one CPU thread)",
        "assumption: tiny_training_cpu scaled by parameters (935k -> 135M); not measured",
    )
    openai_generation: Figure = _figure(
        50, "tokens/s per agent replica (an OpenAI-compatible endpoint, one stream)",
        "assumption: one stream of a hosted 7B-class endpoint",
    )
    sandbox_runs_per_worker: Figure = _figure(
        62.8, "programs/s per warm sandbox worker (each with all its tests)",
        "measured here: 820 HumanEval canonical solutions at 125.6 runs/s on 2 workers (README, The sandbox; "
        "benchmarks/sandbox_throughput.py)",
    )
    thought_tokens: Figure = _figure(
        40, "new tokens per thought (proposal, refinement)", "assumption: one sentence of reasoning",
    )
    program_tokens: Figure = _figure(
        131, "new tokens per program a Boost agent writes",
        "measured here: SmolLM2-135M-Instruct's 164 HumanEval samples, 21,475 tokens (README, Real models)",
    )
    boost_spent_share: Figure = _figure(
        0.69, "share of the worst-case generations a problem spends (solved early, duplicates merged, children kept)",
        "measured here: the 2-agent tree spent 22.1 of its 32 generations per problem (README, Boost, tree_2_agents)",
    )

    @model_validator(mode="after")
    def _a_share(self) -> Throughput:
        if self.boost_spent_share.value > 1:
            raise ValueError(f"boost_spent_share is a share: at most 1, got {self.boost_spent_share.value}")
        return self


def load_throughput(path: str | Path) -> Throughput:
    """The default figures with those of `path` over them: `name: 750` (the source then says
    'override: FILE') or `name: {value: 750, source: ...}`."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ThroughputError(f"{path}: cannot read it ({err})") from None
    if not isinstance(data, dict):
        raise ThroughputError(f"{path}: must be a mapping of figure names to values")
    defaults = Throughput()
    known = set(Throughput.model_fields)
    merged = {}
    for name, given in data.items():
        if name not in known:
            raise ThroughputError(f"{path}: {name}: unknown figure (known: {', '.join(sorted(known))})")
        override = given if isinstance(given, dict) else {"value": given}
        default = getattr(defaults, name)
        merged[name] = {"unit": default.unit, "source": f"override: {path}", **override}
    try:
        return Throughput.model_validate({**defaults.model_dump(), **merged})
    except ValidationError as err:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise ThroughputError(f"{path}: " + "; ".join(lines)) from None
