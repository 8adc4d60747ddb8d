"""The `stages.disentangle` section: the clustering step and the experts step, each with its knobs."""

from __future__ import annotations

import os
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bdc_ray.disentangle.cluster_config import ClusterConfig
from bdc_ray.disentangle.expert_config import ExpertsConfig
from bdc_ray.disentangle.source import SPLITS, SYNTHETIC


class DisentangleStage(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    source: str = Field(
        "boost",
        description="Rows to cluster and train on: 'boost' (the run's boost/sft.jsonl), 'synthetic:<split>' (the "
        "run's synthetic suite, reference solutions) or a JSONL file of rows in sft.jsonl's shape.",
    )
    cluster: ClusterConfig = Field(
        default_factory=ClusterConfig, description="Embedding and KMeans clustering of the SFT problems."
    )
    experts: ExpertsConfig = Field(
        default_factory=ExpertsConfig, description="One LoRA expert per cluster plus the all-data baseline (Ray Train)."
    )

    @model_validator(mode="after")
    def _source(self) -> DisentangleStage:
        if self.source.startswith(SYNTHETIC) and self.source[len(SYNTHETIC):] not in SPLITS:
            raise ValueError(f"source {self.source!r}: the synthetic splits are {', '.join(SPLITS)}")
        return self

    def resolve_paths(self, resolve: Callable[[str], str]) -> None:
        """A rows file and a local base model folder are found relative to the config file's folder
        (`~` expanded)."""
        if self.source != "boost" and not self.source.startswith(SYNTHETIC):
            self.source = resolve(os.path.expanduser(self.source))
        base = self.experts.base_model
        if base and base.startswith((".", "~")):
            self.experts.base_model = resolve(os.path.expanduser(base))
