"""Sentence embeddings with the packaged all-MiniLM-L6-v2: offline, unit length, cached on storage."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from bdc_ray.disentangle.binary_files import read_npy, write_npy_atomic
from bdc_ray.disentangle.embed import (
    DEFAULT_EMBEDDER,
    EmbedderError,
    cache_path,
    embed_texts,
    resolve_embedder,
)

TEXTS = [
    "Write a function that returns the sum of a list of integers.",
    "Return the total of all numbers in the given list.",
    "Reverse the string and repeat each character three times.",
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


def test_default_embedder_is_the_packaged_model_folder():
    folder = Path(resolve_embedder(DEFAULT_EMBEDDER))
    assert (folder / "model.safetensors").is_file() and (folder / "modules.json").is_file()
    assert resolve_embedder("sentence-transformers/all-MiniLM-L6-v2") == str(folder)
    assert resolve_embedder("/some/other/model") == "/some/other/model"


def test_embeddings_are_unit_float32_and_follow_meaning():
    x = embed_texts(TEXTS)
    assert x.shape == (3, 384) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    sims = x @ x.T
    assert sims[0, 1] > sims[0, 2] + 0.2, sims  # two wordings of "sum a list" vs a string task
    np.testing.assert_allclose(embed_texts(TEXTS[::-1]), x[::-1], atol=1e-5)


def test_a_second_call_reads_the_cache(tmp_path):
    cache = str(tmp_path / "cache")
    first = embed_texts(TEXTS, cache_dir=cache)
    path = cache_path(cache, DEFAULT_EMBEDDER, TEXTS)
    np.testing.assert_array_equal(read_npy(path), first)
    # Replace the cached array with a marker: only a cache hit can return it.
    marker = np.full_like(first, 1 / np.sqrt(first.shape[1]))
    write_npy_atomic(path, marker)
    np.testing.assert_array_equal(embed_texts(TEXTS, cache_dir=cache), marker)
    # Other texts, or another model name, are other keys.
    assert cache_path(cache, DEFAULT_EMBEDDER, TEXTS[:2]) != path
    assert cache_path(cache, "another-model", TEXTS) != path
    np.testing.assert_allclose(embed_texts(TEXTS[:2], cache_dir=cache), first[:2], atol=1e-5)
    assert sorted(p.name for p in Path(cache).iterdir()) == sorted(
        Path(cache_path(cache, DEFAULT_EMBEDDER, t)).name for t in (TEXTS, TEXTS[:2])
    )


def test_no_texts_give_an_empty_matrix():
    assert embed_texts([]).shape == (0, 384)


def test_non_strings_are_rejected():
    with pytest.raises(TypeError, match="list of strings"):
        embed_texts(["fine", 3])  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["no-such-org/no-such-model-xyz", "/nonexistent/model/folder"])
def test_a_model_that_is_not_available_offline_fails_clearly(name):
    with pytest.raises(EmbedderError, match="cannot load sentence-transformers model .* offline") as err:
        embed_texts(["x"], model=name)
    assert name in str(err.value) and DEFAULT_EMBEDDER in str(err.value)
