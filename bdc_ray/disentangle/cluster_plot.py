"""A 2-D map of the problem clusters (the paper's Figure 4): is the split the experts get sensible?

Points are problems coloured by cluster; crosses are the centroids, projected with the points.
PCA is linear, so a unit-length centroid would land outside its cloud: it is drawn at its
members' mean, i.e. scaled by their mean cosine to it. t-SNE compares by cosine and cannot place
new points afterwards, so the centroids are embedded together with the points. The legend gives each cluster's size and, when known, its main label (e.g.
the synthetic family), so a glance tells whether clusters follow the task types.

Drawn on a bare matplotlib Figure (Agg canvas): no pyplot state, safe in workers and threads.
"""

from __future__ import annotations

import io
from typing import Literal, Sequence

import numpy as np

from bdc_ray.storage import write_bytes_atomic

_METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE"}


def project_2d(
    embeddings: np.ndarray, labels: np.ndarray, centroids: np.ndarray, method: Literal["pca", "tsne"], seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(points [n, 2], centroids [k, 2]) in one 2-D space."""
    n = embeddings.shape[0]
    if method == "pca":
        from sklearn.decomposition import PCA

        scale = np.ones(centroids.shape[0], dtype=np.float32)
        for c in range(centroids.shape[0]):
            members = embeddings[labels == c]
            if len(members):
                scale[c] = float((members @ centroids[c]).mean())
        pca = PCA(n_components=2, random_state=seed).fit(embeddings)
        return pca.transform(embeddings), pca.transform(centroids * scale[:, None])
    if method == "tsne":
        from sklearn.manifold import TSNE

        stacked = np.vstack([embeddings, centroids])
        perplexity = float(min(30.0, max(1.0, (stacked.shape[0] - 1) / 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed).fit_transform(stacked)
        return xy[:n], xy[n:]
    raise ValueError(f"unknown projection {method!r}: use 'pca' or 'tsne'")


def plot_clusters(
    embeddings: np.ndarray,
    labels: np.ndarray,
    centroids: np.ndarray,
    path: str,
    method: Literal["pca", "tsne"] = "tsne",
    seed: int = 0,
    names: Sequence[str | None] | None = None,
    title: str | None = None,
) -> str:
    """Write the map as a PNG to `path` (any storage URI) and return `path`; `names[c]` labels
    cluster c in the legend (e.g. "arith 83%", its main family)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    if embeddings.shape[0] < 2:
        raise ValueError("a cluster map needs at least two problems")
    k = centroids.shape[0]
    points, centres = project_2d(np.asarray(embeddings, np.float32), labels, np.asarray(centroids, np.float32), method, seed)
    sizes = np.bincount(labels, minlength=k)
    fig = Figure(figsize=(7.5, 6), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    cmap = colormaps["tab10" if k <= 10 else "tab20"]
    for c in range(k):
        colour = cmap(c % cmap.N)
        members = points[labels == c]
        label = f"{c}: n={sizes[c]}" + (f", {names[c]}" if names and names[c] else "")
        ax.scatter(members[:, 0], members[:, 1], s=16, alpha=0.75, color=colour, label=label, linewidths=0)
        ax.scatter(centres[c, 0], centres[c, 1], marker="X", s=160, color=colour, edgecolors="black", linewidths=1.2)
    ax.scatter([], [], marker="X", s=80, color="white", edgecolors="black", label="centroid")
    shown = _METHOD_NAMES[method]
    ax.set_title(title or f"{len(labels)} problems in {k} clusters ({shown})")
    ax.set_xlabel(f"{shown} 1")
    ax.set_ylabel(f"{shown} 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    write_bytes_atomic(path, buffer.getvalue())
    return path
