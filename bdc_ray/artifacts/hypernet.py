"""What the rest of the pipeline knows of a finished hypernetwork without opening its checkpoint.

Customize writes the checkpoint (weights, then `hypernet.json` last, the completion marker) and
is the only one to read it. The held-out evaluation and Serve need two facts: is there a finished
hypernetwork in a folder, and which one is it (so a score measured on other weights is measured
again): `HypernetIdentity` gives both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bdc_ray import storage

META_FILE = "hypernet.json"
"""The checkpoint's metadata, written last: a folder holding it is a finished hypernetwork."""


@dataclass(frozen=True)
class HypernetIdentity:
    folder: str
    digest: str | None
    """SHA-256 of the checkpoint's metadata (architecture, experts, training metrics); None when
    the folder holds no finished hypernetwork."""

    @property
    def complete(self) -> bool:
        return self.digest is not None


def is_complete(folder: str) -> bool:
    return storage.exists(storage.join(folder, META_FILE))


def hypernet_identity(folder: str) -> HypernetIdentity:
    if not is_complete(folder):
        return HypernetIdentity(folder, None)
    meta = storage.read_text(storage.join(folder, META_FILE))
    return HypernetIdentity(folder, hashlib.sha256(meta.encode()).hexdigest())
