"""numpy arrays (embeddings) on storage, written atomically through storage.write_bytes_atomic."""

from __future__ import annotations

import io

import numpy as np

from bdc_ray import storage


def write_npy_atomic(path: str, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    storage.write_bytes_atomic(path, buffer.getvalue())


def read_npy(path: str) -> np.ndarray:
    fs, p = storage.filesystem(path)
    with fs.open(p, "rb") as fh:
        return np.load(fh, allow_pickle=False)
