"""Shared fixtures: one real local Ray cluster for the whole session (starting one costs ~10 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

# Tests talk to the clusters they start themselves; a developer's RAY_ADDRESS must not leak in.
os.environ.pop("RAY_ADDRESS", None)
# The test clusters live on loopback and are joined by test subprocesses (drivers submitted
# the way `ray job submit` would): opt out of token auth for them only, explicitly.
os.environ["RAY_AUTH_MODE"] = "disabled"


@pytest.fixture(scope="session")
def _ray_session():
    import ray

    yield
    ray.shutdown()


@pytest.fixture
def ray_local(_ray_session):
    """A real single-node local Ray cluster with 2 CPUs, shared by the tests of a session.

    Started on first use and again after a test that needed a multi-node cluster of its own.
    """
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, namespace="bdc-tests", log_to_driver=False)
    return ray


def cluster_address() -> str:
    """The GCS address of the running test cluster, for subprocess drivers (RAY_ADDRESS)."""
    import ray

    return ray.get_runtime_context().gcs_address
