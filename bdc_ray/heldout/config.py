"""The `stages.eval` section: which held-out splits and solvers, how they decode, and how they are scored.

Its `k`, `tests` and `datasets` also say how the data stage scores reference solutions.
"""

from __future__ import annotations

from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bdc_ray.resources import ResourceSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class EvalDataset(_Strict):
    path: str = Field(description="A problem file (HumanEval, MBPP, APPS, CodeContests or bdc JSONL).")
    format: str | None = Field(None, description="Format name; None = detect.")
    name: str | None = Field(None, description="Label in tables; default: the file name.")


class EvalStage(_Strict):
    k: list[int] = Field(default_factory=lambda: [1, 10], description="pass@k values to report.")
    tests: str = Field("all", pattern="^(all|hidden|public)$", description="Which tests decide a pass.")
    datasets: list[EvalDataset] = Field(
        default_factory=list, description="Public problem files whose reference solutions `bdc run` evaluates."
    )
    splits: list[Literal["train", "heldout", "heldout_comp"]] = Field(
        default_factory=lambda: ["heldout", "heldout_comp"],
        description="Synthetic splits the solvers are measured on (held-out: never trained on, never boosted).",
    )
    solvers: list[Literal["base", "all_data", "hard_routing", "customized"]] = Field(
        default_factory=lambda: ["base", "all_data", "hard_routing", "customized"],
        min_length=1,
        description="base model (the student), the all-data LoRA baseline, each problem on its nearest cluster's "
        "expert alone (hard routing), the customized solver (experts + hypernetwork).",
    )
    teachers: bool = Field(
        True,
        description="Also measure every agent whose weights are local (transformers: tiny and HF folders), prompted "
        "as the student is, so the table shows each model's own strength. Agents behind an API are left out.",
    )
    samples: int = Field(1, ge=1, description="Samples per problem and solver (pass@k needs k <= samples).")
    temperature: float = Field(0.0, ge=0, description="0: greedy decoding.")
    max_new_tokens: int = Field(256, ge=1, description="Longest generated program in tokens.")
    resources: ResourceSpec = Field(
        default_factory=ResourceSpec, description="What each solver's generation task asks for (a GPU node on a cluster)."
    )

    @field_validator("k")
    @classmethod
    def _positive_k(cls, value: list[int]) -> list[int]:
        if not value or any(k < 1 for k in value):
            raise ValueError(f"k must be a non-empty list of integers >= 1, got {value}")
        return sorted(set(value))

    def resolve_paths(self, resolve: Callable[[str], str]) -> None:
        """Dataset files are found relative to the config file's folder."""
        for ds in self.datasets:
            ds.path = resolve(ds.path)
