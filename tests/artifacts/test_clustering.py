"""The clustering file: written and read back whole, refused when its parts disagree."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bdc_ray import storage
from bdc_ray.artifacts.clustering import Clustering, examples, load_clustering, save_clustering
from bdc_ray.disentangle.clusters import fit_clusters
from tests.disentangle.cluster_support import blobs, ids_of


def test_examples_are_the_first_texts_of_each_cluster():
    c = Clustering(
        k=2, centroids=np.eye(2, dtype=np.float32), labels=np.array([1, 0, 1, 1]), ids=ids_of(4), silhouette={}, embedder="e"
    )
    assert examples(c, ["a", "b", "c", "d"], 2) == [["b"], ["a", "c"]]
    assert examples(c, ["a", "b", "c", "d"], 0) == [[], []]


def test_save_and_load_round_trip(tmp_path):
    x, _ = blobs(k=3, per=5)
    ids = ids_of(15)
    c = fit_clusters(x, ids, k=None, k_range=(2, 5), seed=0, embedder="my-model")
    out = str(tmp_path / "clusters")
    save_clustering(c, out, texts=[f"text {i}" for i in range(15)], examples_per_cluster=2, meta={"input_digest": "abc"})
    back = load_clustering(out)
    assert (back.k, back.ids, back.embedder, back.silhouette) == (c.k, c.ids, c.embedder, c.silhouette)
    np.testing.assert_array_equal(back.centroids, c.centroids)
    np.testing.assert_array_equal(back.labels, c.labels)
    body = json.loads((tmp_path / "clusters" / "clusters.json").read_text())
    assert body["sizes"] == c.sizes and body["input_digest"] == "abc" and body["problems"] == 15
    assert all(len(e) == 2 for e in body["examples"])
    rows = list(storage.read_jsonl(str(tmp_path / "clusters" / "assignments.jsonl")))
    assert rows[0] == {"problem_id": "p0", "cluster": int(c.labels[0])}


def test_inconsistent_clusterings_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"k=2 but centroids have shape \(3, 4\)"):
        Clustering(k=2, centroids=np.eye(3, 4, dtype=np.float32), labels=np.zeros(2, int), ids=ids_of(2), silhouette={}, embedder="e")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        Clustering(k=2, centroids=np.eye(2, dtype=np.float32), labels=np.array([0, 2]), ids=ids_of(2), silhouette={}, embedder="e")
    x, _ = blobs(k=2, per=4)
    out = tmp_path / "c"
    save_clustering(fit_clusters(x, ids_of(8), k=2), str(out))
    (out / "assignments.jsonl").write_text('{"problem_id": "p0", "cluster": 7}\n')
    with pytest.raises(ValueError, match="clusters.json and assignments.jsonl disagree"):
        load_clustering(str(out))


def test_loading_a_folder_without_clusters_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="clusters.json is missing"):
        load_clustering(str(tmp_path))
