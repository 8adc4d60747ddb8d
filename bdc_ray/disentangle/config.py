"""The `stages.disentangle` section: the clustering step and the experts step, each with its knobs."""

from __future__ import annotations

import os
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field

from bdc_ray.disentangle.cluster_config import ClusterConfig
from bdc_ray.disentangle.expert_config import ExpertsConfig


class DisentangleStage(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    cluster: ClusterConfig = Field(
        default_factory=ClusterConfig, description="Embedding and KMeans clustering of the SFT problems."
    )
    experts: ExpertsConfig = Field(
        default_factory=ExpertsConfig, description="One LoRA expert per cluster plus the all-data baseline (Ray Train)."
    )

    def resolve_paths(self, resolve: Callable[[str], str]) -> None:
        """A local base model folder is found relative to the config file's folder (`~` expanded)."""
        base = self.experts.base_model
        if base and base.startswith((".", "~")):
            self.experts.base_model = resolve(os.path.expanduser(base))
