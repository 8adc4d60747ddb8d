"""Shared fixtures: one real local Ray cluster for the whole session (starting one costs ~10 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

# Tests talk to the clusters they start themselves; a developer's RAY_ADDRESS must not leak in.
os.environ.pop("RAY_ADDRESS", None)


@pytest.fixture(scope="session")
def ray_local():
    """A real single-node local Ray cluster with 2 CPUs."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, namespace="bdc-tests", log_to_driver=False)
    yield ray
    ray.shutdown()
