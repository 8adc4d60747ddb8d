"""Problem statements -> rank-wise expert weights, without the model they route.

The hypernetwork over the routing features (features.py) is all that decides a problem's
weights. The transformers solver routes through it and applies the weights in its composed
model; the vLLM engine of Serve routes through it alone and folds the weights into adapter
folders (materialized.py), so it never loads a second, transformers copy of the base model
beside vLLM's.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch

from bdc_ray.customize.checkpoint import HypernetMeta, load_checkpoint
from bdc_ray.customize.features import Embedder, default_embedder, routing_features
from bdc_ray.customize.hypernet import HyperNetwork


class Router:
    """Thread-safe: one lock serialises routing, because the embedder's fast tokenizer may not be
    entered by two threads at once."""

    def __init__(self, hypernet: HyperNetwork, meta: HypernetMeta, embed: Embedder,
                 device: torch.device | str = "cpu") -> None:
        self.hypernet = hypernet.to(device).eval()
        self.meta = meta
        self.embed = embed
        self.device = torch.device(device)
        self.centroids = np.asarray(meta.centroids, dtype=np.float32)
        self._lock = threading.Lock()

    @property
    def expert_names(self) -> list[str]:
        return [e.name for e in self.meta.experts]

    @property
    def module_names(self) -> list[str]:
        """The customized modules, in the order of the weights' module axis."""
        return list(self.meta.module_names)

    def features(self, problems: Sequence[str]) -> torch.Tensor:
        feats = routing_features(self.embed(list(problems)), self.centroids)
        return torch.from_numpy(feats).to(self.device)

    def weights(self, problems: Sequence[str]) -> torch.Tensor:
        """[n, M, E*r] weights of each problem statement."""
        with self._lock, torch.no_grad():
            return self.hypernet(self.features(problems))

    def nearest_experts(self, problems: Sequence[str]) -> list[int]:
        """Each statement's expert (index into `expert_names`) by the most similar centroid among
        the clusters that have one: the routing Disentangle's clustering implies (hard routing),
        the baseline the hypernetwork's input-aware mixing is measured against."""
        clusters = [e.cluster for e in self.meta.experts]
        if any(c is None for c in clusters):
            raise ValueError("this checkpoint does not record each expert's cluster: train the hypernetwork again")
        with self._lock:
            similarity = self.features(problems)[:, -len(self.centroids):].cpu().numpy()
        return [int(i) for i in similarity[:, clusters].argmax(1)]


def load_router(hypernet_dir: str, *, embed: Embedder | None = None, device: torch.device | str = "cpu") -> Router:
    """The checkpoint's hypernetwork with its recorded embedder (or `embed`), on `device`."""
    hypernet, meta = load_checkpoint(hypernet_dir)
    return Router(hypernet, meta, embed or default_embedder(meta.embedder), device)
