"""Binary artifacts (npy arrays, PNG maps) written atomically, beside storage.py's text writers.

A reader sees no file or the whole file: locally a temporary sibling renamed into place, on an
object store one PUT, which becomes visible whole.
"""

from __future__ import annotations

import io
import os
import uuid

import numpy as np
from fsspec.implementations.local import LocalFileSystem

from bdc_ray import storage


def write_bytes_atomic(path: str, data: bytes) -> None:
    fs, p = storage.filesystem(path)
    if "/" in p:
        fs.makedirs(p.rsplit("/", 1)[0], exist_ok=True)
    if isinstance(fs, LocalFileSystem):
        tmp = f"{p}.tmp-{uuid.uuid4().hex}"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    else:
        with fs.open(p, "wb") as fh:
            fh.write(data)


def write_npy_atomic(path: str, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_bytes_atomic(path, buffer.getvalue())


def read_npy(path: str) -> np.ndarray:
    fs, p = storage.filesystem(path)
    with fs.open(p, "rb") as fh:
        return np.load(fh, allow_pickle=False)
