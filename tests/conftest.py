"""Shared fixtures: one real local Ray cluster for the whole session (starting one costs ~10 s), tiny models."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest_plugins = ["tests.session_report"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

# Tests talk to the clusters they start themselves; a developer's RAY_ADDRESS must not leak in.
os.environ.pop("RAY_ADDRESS", None)
# The test clusters live on loopback and are joined by test subprocesses (drivers submitted
# the way `ray job submit` would): opt out of token auth for them only, explicitly.
os.environ["RAY_AUTH_MODE"] = "disabled"


METRICS_REPORT_INTERVAL_MS = 2000
"""How often the session cluster's workers export metrics (Ray's default, 10 s, only makes tests/test_metrics_export.py wait)."""

_ray_jobs: list[str] = []
"""The driver job ids this process has had: more than one means a second Ray session (see `_one_ray_session`)."""
_metrics_port: list[int] = []


@pytest.fixture(scope="session")
def ray_local():
    """THE real single-node local Ray cluster of the session (2 CPUs, metrics exported on a known
    port), started on first use and shut down once, after the last test.

    One per process, never restarted: every `ray.init` after a `ray.shutdown` in one process
    leaves the previous session's OpenTelemetry metric reader thread running (Ray 2.60), and
    such a thread that exports while the exiting interpreter runs C++ static destructors
    crashes it with SIGSEGV after every test passed (issue 14; docs/design-choices.md). A test
    that needs a cluster of another shape runs it in a child process (tests/boost/node_loss.py).
    """
    import ray

    from tests.jobs.local_head import free_ports

    if ray.is_initialized():
        pytest.fail("Ray was started in this process before `ray_local`: request `ray_local` instead")
    _metrics_port[:] = free_ports(1)
    ray.init(address="local", num_cpus=2, include_dashboard=False, namespace="bdc-tests", log_to_driver=False,
             _metrics_export_port=_metrics_port[0],
             _system_config={"metrics_report_interval_ms": METRICS_REPORT_INTERVAL_MS})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_metrics_url(ray_local) -> str:
    """The session cluster's Prometheus endpoint."""
    return f"http://127.0.0.1:{_metrics_port[0]}/metrics"


@pytest.fixture(autouse=True)
def _one_ray_session():
    """Fails the test that shut down the session's Ray or started another Ray session in this process."""
    yield
    ray = sys.modules.get("ray")
    if ray is None:
        return
    job = ray.get_runtime_context().get_job_id() if ray.is_initialized() else None
    if job is not None and job not in _ray_jobs:
        _ray_jobs.append(job)
    if len(_ray_jobs) > 1 or (_ray_jobs and job is None):
        _ray_jobs[:] = [job] if job else []  # name this test only, not every later one
        pytest.fail("this test shut down the session's Ray cluster or started another one in the test process: "
                    "use `ray_local`, or a child process for a cluster of its own (see tests/conftest.py)",
                    pytrace=False)


def cluster_address() -> str:
    """The GCS address of the running test cluster, for subprocess drivers (RAY_ADDRESS)."""
    import ray

    return ray.get_runtime_context().gcs_address


def _tiny_recipe(seed: int, families=None) -> dict:
    """A small tiny model (about 30 s to build): enough to exercise every path, not to solve much."""
    return {
        "seed": seed, "layers": 2, "hidden": 64, "heads": 4, "steps": 60, "vocab_size": 512, "families": families,
        "synth": {"train_per_family": 40, "heldout_per_family": 0, "heldout_comp_per_family": 0},
    }


@pytest.fixture(scope="session")
def tiny_agents(tmp_path_factory) -> dict:
    """`models` overrides with two different tiny agents; built once per session, cached by recipe."""
    prompts = {"max_thought_tokens": 24, "max_code_tokens": 96}  # barely trained models ramble: keep them short
    return {
        "build_root": str(tmp_path_factory.mktemp("tiny-models")),
        "agents": [
            {"name": "tiny-a", "tiny": _tiny_recipe(0), "resources": {"num_cpus": 0.5}, "prompts": prompts},
            {"name": "tiny-b", "tiny": _tiny_recipe(1, ["arith", "string", "list"]), "resources": {"num_cpus": 0.5},
             "prompts": prompts},
        ],
        "student": None,  # the experts adapt tiny-a: one build less per session (tests/models covers `student`)
    }


# The smallest run of the stages after Boost: two families, two experts, a few steps each.
LATER_STAGES = {
    "data": {"synthetic": {"families": ["arith", "io"], "train_per_family": 6, "heldout_per_family": 2,
                           "heldout_comp_per_family": 1}},
    "stages": {
        "disentangle": {
            "cluster": {"k": 2},
            "experts": {"deepspeed": False, "steps": 4, "checkpoint_every": 2, "lora": {"r": 4, "lora_alpha": 8},
                        "scaling": {"num_workers": 1, "resources_per_worker": {"CPU": 0.5}}},
        },
        "customize": {"tune": False, "train": {"steps": 4, "eval_every": 2}},
        "eval": {"splits": ["heldout"], "max_new_tokens": 48, "resources": {"num_cpus": 0.5}},
    },
}


def seed_sft_rows(cfg) -> None:
    """Boost's output format from the suite's reference solutions, for tests of the later stages
    (the barely trained test agents verify too few problems to cluster)."""
    from bdc_ray.artifacts.sft import problem_rows, write_sft_rows

    write_sft_rows(cfg.layout.sft_file, problem_rows(cfg.suite.write()["train"]))
