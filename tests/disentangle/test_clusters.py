"""KMeans clusters of problem embeddings: recovering the suite's families, choosing K, routing to centroids."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, completeness_score

from bdc_ray.disentangle.clusters import assign, candidate_ks, centroid_similarity, fit_clusters
from tests.disentangle.cluster_support import blobs, ids_of, suite_embeddings, suite_train

PER_FAMILY = 30


@pytest.fixture(scope="module")
def suite():
    import torch

    torch.set_num_threads(1)
    problems = suite_train(PER_FAMILY)
    return problems, suite_embeddings(PER_FAMILY), [p.family for p in problems]


@pytest.mark.parametrize("suite_seed", [0, 1])
def test_problem_texts_cluster_into_the_suite_families(suite, suite_seed):
    problems = suite_train(PER_FAMILY, suite_seed)
    x, families = suite_embeddings(PER_FAMILY, suite_seed), [p.family for p in problems]
    c = fit_clusters(x, [p.id for p in problems], k=6, seed=0)
    ari = adjusted_rand_score(families, c.labels)
    print(f"suite seed {suite_seed}: ARI against families at K=6 ({len(problems)} problems): {ari:.3f}")
    assert ari >= 0.8
    assert c.centroids.shape == (6, 384) and c.centroids.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(c.centroids, axis=1), 1.0, atol=1e-5)
    assert sum(c.sizes) == len(problems) and min(c.sizes) > 0


def test_silhouette_on_the_suite_picks_groups_of_whole_families(suite):
    """The suite's embedding is hierarchical: {arith, branch, list}, {count, string}, {io} are far
    apart, families within them closer. The silhouette prefers that coarse split (measured: K=3,
    0.257 vs 0.255 at K=6); whatever it picks must keep every family in one cluster."""
    problems, x, families = suite
    c = fit_clusters(x, [p.id for p in problems], k=None, k_range=(2, 8), seed=0)
    print("silhouette per K:", {k: round(v, 4) for k, v in c.silhouette.items()}, "chosen K:", c.k)
    assert sorted(c.silhouette) == list(range(2, 9))
    assert c.silhouette[c.k] == max(c.silhouette.values())
    assert completeness_score(families, c.labels) >= 0.95
    assert 2 <= c.k < 6


def test_silhouette_picks_the_number_of_separated_groups():
    x, truth = blobs(k=5, per=20)
    c = fit_clusters(x, ids_of(len(x)), k=None, k_range=(2, 8), seed=0)
    assert c.k == 5
    assert adjusted_rand_score(truth, c.labels) == 1.0
    assert max(c.silhouette, key=c.silhouette.get) == 5 and c.silhouette[5] > 0.8


def test_fixed_k_scores_only_that_k_and_is_deterministic():
    x, _ = blobs(k=3, per=10)
    a = fit_clusters(x, ids_of(30), k=4, seed=1)
    b = fit_clusters(x, ids_of(30), k=4, seed=1)
    assert a.k == 4 and list(a.silhouette) == [4]
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centroids, b.centroids)


def test_k_range_is_capped_at_problems_minus_one():
    x, _ = blobs(k=2, per=3)
    assert candidate_ks(6, (2, 8)) == [2, 3, 4, 5]
    c = fit_clusters(x, ids_of(6), k=None, k_range=(2, 8))
    assert sorted(c.silhouette) == [2, 3, 4, 5]


@pytest.mark.parametrize(
    ("n", "k", "k_range", "match"),
    [
        (5, 6, (2, 8), r"k=6 clusters for 5 problem\(s\)"),
        (5, 0, (2, 8), r"k=0 clusters"),
        (3, None, (3, 8), r"cannot choose K in \[3, 8\] by silhouette for 3 problem"),
        (6, None, (5, 4), r"k_range must satisfy"),
    ],
)
def test_impossible_k_is_a_clear_error(n, k, k_range, match):
    x, _ = blobs(k=1, per=n)
    with pytest.raises(ValueError, match=match):
        fit_clusters(x, ids_of(n), k=k, k_range=k_range)


def test_bad_inputs_are_named():
    x, _ = blobs(k=2, per=3)
    with pytest.raises(ValueError, match="ids must be unique"):
        fit_clusters(x, ["a"] * 6, k=2)
    with pytest.raises(ValueError, match="5 ids for 6 embeddings"):
        fit_clusters(x, ids_of(5), k=2)
    with pytest.raises(ValueError, match="no problems"):
        fit_clusters(np.zeros((0, 4), np.float32), [], k=1)
    with pytest.raises(ValueError, match="2-D"):
        fit_clusters(x[0], ids_of(32), k=2)


def test_assign_and_similarity_route_to_the_nearest_centroid():
    x, truth = blobs(k=4, per=10, seed=3)
    c = fit_clusters(x, ids_of(40), k=4)
    sims = centroid_similarity(x, c.centroids)
    assert sims.shape == (40, 4) and sims.max() <= 1 + 1e-5
    np.testing.assert_array_equal(assign(x, c.centroids), c.labels)
    np.testing.assert_allclose(np.diag(centroid_similarity(c.centroids, c.centroids)), 1.0, atol=1e-5)
    # A new point near a centroid is routed there, whatever its length.
    assert assign(3.0 * c.centroids[2:3] + 0.01, c.centroids).tolist() == [2]
