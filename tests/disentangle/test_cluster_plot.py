"""The cluster map: PCA and t-SNE projections, centroids where their points are, PNG on any storage."""

from __future__ import annotations

import fsspec
import numpy as np
import pytest

from bdc_ray.disentangle.cluster_plot import plot_clusters, project_2d
from bdc_ray.disentangle.clusters import fit_clusters
from tests.disentangle.cluster_support import blobs, ids_of

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def clustered():
    x, _ = blobs(k=3, per=12, spread=0.2)
    return x, fit_clusters(x, ids_of(len(x)), k=3)


def test_pca_draws_each_centroid_at_its_members_mean(clustered):
    x, c = clustered
    points, centres = project_2d(x, c.labels, c.centroids, "pca")
    assert points.shape == (36, 2) and centres.shape == (3, 2)
    for k in range(3):
        np.testing.assert_allclose(centres[k], points[c.labels == k].mean(axis=0), atol=1e-4)


def test_tsne_places_centroids_among_their_members(clustered):
    x, c = clustered
    points, centres = project_2d(x, c.labels, c.centroids, "tsne", seed=0)
    assert points.shape == (36, 2) and centres.shape == (3, 2)
    nearest = np.argmin(((centres[:, None, :] - points[None, :, :]) ** 2).sum(-1), axis=1)
    assert c.labels[nearest].tolist() == [0, 1, 2]


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_the_map_is_a_png_on_any_storage(clustered, method):
    x, c = clustered
    path = f"memory://maps/{method}.png"
    assert plot_clusters(x, c.labels, c.centroids, path, method=method, names=["a 90%", None, "c 100%"]) == path
    with fsspec.open(path, "rb") as fh:
        data = fh.read()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000


def test_bad_requests_fail_clearly(clustered, tmp_path):
    x, c = clustered
    with pytest.raises(ValueError, match="unknown projection 'umap'"):
        plot_clusters(x, c.labels, c.centroids, str(tmp_path / "m.png"), method="umap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least two problems"):
        plot_clusters(x[:1], c.labels[:1], c.centroids, str(tmp_path / "m.png"))
    assert not (tmp_path / "m.png").exists()
