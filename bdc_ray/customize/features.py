"""Routing features of a problem: its sentence embedding and its cosine similarity to each centroid.

The similarities say "which cluster is this like" directly (what the experts were split by);
the embedding keeps everything else the clustering threw away. Training, the solver and Serve all
compute features here, from the same embedder, so a router never sees features it was not
trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from bdc_ray.disentangle import centroid_similarity, embed_texts

Embedder = Callable[[Sequence[str]], np.ndarray]
"""texts -> float32 [n, d] L2-normalised embeddings (disentangle's embed_texts)."""


def routing_features(embeddings: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """[n, d + k]: the (unit) embedding, then its cosine to each of the k centroids."""
    embeddings = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
    centroids = np.atleast_2d(np.asarray(centroids, dtype=np.float32))
    if embeddings.shape[1] != centroids.shape[1]:
        raise ValueError(
            f"embeddings have dimension {embeddings.shape[1]} but the centroids {centroids.shape[1]}: "
            "were they made by different embedders?"
        )
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    return np.concatenate([unit, centroid_similarity(embeddings, centroids)], axis=1).astype(np.float32)


def default_embedder(model: str, cache_dir: str | None = None) -> Embedder:
    """The project's sentence embedder by name, the one that made the clustering's centroids."""
    return lambda texts: embed_texts(list(texts), model=model, cache_dir=cache_dir)
