"""The clustering file (`disentangle/clusters/`): which cluster each problem is in, and the centroids.

    clusters.json       k, embedder, sizes, silhouette per K tried, example texts, centroids (+ the
                        stage's own resume keys)
    assignments.jsonl   {"problem_id", "cluster"} per clustered problem

It is what Disentangle hands on: experts train on their clusters' rows, and Customize and Serve
route a problem by its embedding's cosine to the centroids, made by the embedder named here (the
centroids are unit rows). assignments.jsonl is written first and clusters.json last, so a folder
with clusters.json is complete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from bdc_ray import storage

CLUSTERS_FILE = "clusters.json"
ASSIGNMENTS_FILE = "assignments.jsonl"


@dataclass
class Clustering:
    k: int
    centroids: np.ndarray  # [k, d] float32, unit rows
    labels: np.ndarray  # [n] int, cluster of ids[i]
    ids: list[str]
    silhouette: dict[int, float]  # mean silhouette of each K tried (empty when K was fixed and < 2)
    embedder: str

    def __post_init__(self) -> None:
        """A clustering whose parts disagree would route to experts that do not exist: refuse it."""
        if self.centroids.ndim != 2 or self.centroids.shape[0] != self.k:
            raise ValueError(f"k={self.k} but centroids have shape {self.centroids.shape} (expected [k, dim])")
        if len(self.labels) != len(self.ids):
            raise ValueError(f"{len(self.labels)} labels for {len(self.ids)} ids")
        if len(self.labels) and not 0 <= int(np.min(self.labels)) <= int(np.max(self.labels)) < self.k:
            raise ValueError(f"labels must lie in [0, {self.k}), got {int(np.min(self.labels))}..{int(np.max(self.labels))}")

    @property
    def sizes(self) -> list[int]:
        return np.bincount(self.labels, minlength=self.k).tolist()


def examples(c: Clustering, texts: Sequence[str], per_cluster: int) -> list[list[str]]:
    """The first `per_cluster` texts of each cluster, in input order."""
    if len(texts) != len(c.ids):
        raise ValueError(f"{len(texts)} texts for {len(c.ids)} clustered problems")
    chosen: list[list[str]] = [[] for _ in range(c.k)]
    for text, label in zip(texts, c.labels):
        if len(chosen[label]) < per_cluster:
            chosen[label].append(text)
    return chosen


def save_clustering(
    c: Clustering,
    out_dir: str,
    texts: Sequence[str] | None = None,
    examples_per_cluster: int = 3,
    meta: dict[str, Any] | None = None,
) -> None:
    """assignments.jsonl, then clusters.json: a folder with clusters.json is complete."""
    storage.write_jsonl_atomic(
        storage.join(out_dir, ASSIGNMENTS_FILE),
        ({"problem_id": pid, "cluster": int(label)} for pid, label in zip(c.ids, c.labels)),
    )
    body = {
        "k": c.k,
        "embedder": c.embedder,
        "problems": len(c.ids),
        "dim": int(c.centroids.shape[1]),
        "sizes": c.sizes,
        "silhouette": {str(k): v for k, v in sorted(c.silhouette.items())},
        "examples": examples(c, texts, examples_per_cluster) if texts is not None else [[] for _ in range(c.k)],
        "centroids": c.centroids.astype(np.float32).tolist(),
        **(meta or {}),
    }
    storage.write_json_atomic(storage.join(out_dir, CLUSTERS_FILE), body)


def read_clusters_json(out_dir: str) -> dict[str, Any]:
    path = storage.join(out_dir, CLUSTERS_FILE)
    if not storage.exists(path):
        raise FileNotFoundError(f"no clustering at {out_dir}: {CLUSTERS_FILE} is missing (run `bdc disentangle cluster`)")
    fs, p = storage.filesystem(path)
    with fs.open(p, "r", encoding="utf-8") as fh:
        return json.load(fh)


def load_clustering(out_dir: str) -> Clustering:
    body = read_clusters_json(out_dir)
    rows = list(storage.read_jsonl(storage.join(out_dir, ASSIGNMENTS_FILE)))
    try:
        return Clustering(
            k=int(body["k"]),
            centroids=np.asarray(body["centroids"], dtype=np.float32),
            labels=np.asarray([r["cluster"] for r in rows], dtype=np.int64),
            ids=[r["problem_id"] for r in rows],
            silhouette={int(k): float(v) for k, v in body["silhouette"].items()},
            embedder=body["embedder"],
        )
    except ValueError as err:
        raise ValueError(f"{out_dir}: {CLUSTERS_FILE} and {ASSIGNMENTS_FILE} disagree: {err}") from err
