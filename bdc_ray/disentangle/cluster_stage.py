"""The clustering step of Disentangle: boost/sft.jsonl in, `<run>/disentangle/clusters/` out.

Problems are clustered, not rows: sft.jsonl has one or two rows per problem (p2t, t2c) and every
row of a problem trains the expert of that problem's cluster. The step is plain Python (one
embedder forward pass and KMeans fit in the driver's process): it takes seconds to minutes even
for thousands of problems, far less than starting Ray workers would save.

Resumable: clusters.json records the digest of the clustered problems and the config; a re-run
with both unchanged returns the saved result without embedding or fitting anything.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from typing import Any

from bdc_ray import storage
from bdc_ray.artifacts.clustering import CLUSTERS_FILE, Clustering, load_clustering, read_clusters_json, save_clustering
from bdc_ray.artifacts.layout import CLUSTER_PLOT_FILE
from bdc_ray.artifacts.sft import SFTProblem, read_sft_problems
from bdc_ray.disentangle.cluster_config import ClusterConfig
from bdc_ray.disentangle.cluster_plot import plot_clusters
from bdc_ray.disentangle.clusters import fit_clusters
from bdc_ray.disentangle.embed import embed_texts
from bdc_ray.timing import in_stage, phase

log = logging.getLogger(__name__)

EMBEDDINGS_DIR = "embeddings"


def sft_problems(sft_path: str) -> tuple[list[SFTProblem], dict[str, str]]:
    """(rows, problem text by id in first-seen order), with every malformed input named."""
    if not storage.exists(sft_path):
        raise FileNotFoundError(f"SFT file not found: {sft_path} (run `bdc boost` first, or pass --sft)")
    rows = read_sft_problems(sft_path)
    if not rows:
        raise ValueError(f"{sft_path} has no SFT rows: nothing to cluster (did Boost verify any problem?)")
    texts: dict[str, str] = {}
    for i, row in enumerate(rows, start=1):
        if texts.setdefault(row.problem_id, row.problem) != row.problem:
            raise ValueError(f"{sft_path} row {i}: problem {row.problem_id!r} has two different problem texts")
    return rows, texts


def input_digest(texts: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(list(texts.items()), ensure_ascii=False).encode()).hexdigest()


def cluster_families(c: Clustering, rows: list[SFTProblem]) -> list[Counter]:
    """Rows per family in each cluster (empty counters when rows carry no family)."""
    cluster_of = dict(zip(c.ids, c.labels.tolist()))
    counts = [Counter() for _ in range(c.k)]
    for row in rows:
        if row.family:
            counts[cluster_of[row.problem_id]][row.family] += 1
    return counts


def _main_family(families: Counter) -> str | None:
    if not families:
        return None
    name, count = families.most_common(1)[0]
    return f"{name} {count / sum(families.values()):.0%}"


def _summary(c: Clustering, rows: list[SFTProblem], body: dict[str, Any], out_dir: str, resumed: bool) -> dict[str, Any]:
    cluster_of = dict(zip(c.ids, c.labels.tolist()))
    row_counts = Counter(cluster_of[r.problem_id] for r in rows)
    clusters = []
    for k, (families, size) in enumerate(zip(cluster_families(c, rows), c.sizes)):
        top = families.most_common(1)
        clusters.append(
            {
                "cluster": k,
                "problems": size,
                "rows": row_counts[k],
                "top_family": top[0][0] if top else None,
                "top_family_share": round(top[0][1] / sum(families.values()), 3) if top else None,
                "example": body["examples"][k][0] if body["examples"][k] else None,
            }
        )
    return {
        "out_dir": out_dir,
        "rows": len(rows),
        "problems": len(c.ids),
        "k": c.k,
        "embedder": c.embedder,
        "silhouette": {k: round(v, 4) for k, v in c.silhouette.items()},
        "plot": storage.join(out_dir, CLUSTER_PLOT_FILE),
        "resumed": resumed,
        "clusters": clusters,
    }


@in_stage("disentangle")
def run_cluster_stage(sft_path: str, out_dir: str, cfg: ClusterConfig, progress: bool = True) -> dict[str, Any]:
    """Embed, cluster, save and draw the problems of `sft_path`; a summary for tables and logs."""
    rows, texts = sft_problems(sft_path)
    if len(texts) < 2:
        raise ValueError(f"{sft_path} has {len(texts)} distinct problem: clustering needs at least 2")
    digest, config = input_digest(texts), cfg.model_dump(mode="json")
    if storage.exists(storage.join(out_dir, CLUSTERS_FILE)):
        body = read_clusters_json(out_dir)
        if body.get("input_digest") == digest and body.get("config") == config:
            log.info("clusters in %s are up to date; skipping", out_dir)
            return _summary(load_clustering(out_dir), rows, body, out_dir, resumed=True)
    ids, problem_texts = list(texts), list(texts.values())
    with phase("problems embedded (embedder load included)"):
        embeddings = embed_texts(
            problem_texts, cfg.embedder, storage.join(out_dir, EMBEDDINGS_DIR), cfg.batch_size, progress=progress
        )
    with phase("clusters fitted"):
        c = fit_clusters(embeddings, ids, cfg.k, (cfg.k_min, cfg.k_max), cfg.seed, embedder=cfg.embedder,
                         progress=progress)
    names = [_main_family(f) for f in cluster_families(c, rows)]
    with phase("cluster map drawn"):
        plot_clusters(
            embeddings,
            c.labels,
            c.centroids,
            storage.join(out_dir, CLUSTER_PLOT_FILE),
            method=cfg.plot,
            seed=cfg.seed,
            names=names,
        )
    meta = {"input_digest": digest, "config": config, "sft_path": sft_path, "rows": len(rows)}
    save_clustering(c, out_dir, problem_texts, cfg.examples_per_cluster, meta)
    return _summary(c, rows, read_clusters_json(out_dir), out_dir, resumed=False)
