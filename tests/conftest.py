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
        ray.init(address="local", num_cpus=2, include_dashboard=False, namespace="bdc-tests", log_to_driver=False)
    return ray


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
