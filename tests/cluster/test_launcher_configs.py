"""cluster/aws.yaml and cluster/gcp.yaml against the schema and checks `ray up` applies before it
contacts a cloud: the JSON schema inside the installed ray package, then ray's own
prepare_config (provider defaults merged) and validate_config."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from bdc_ray.plan import launcher_node_types as node_types
from tests.cluster.conftest import CLUSTER, assert_stages_pinned
from tests.conftest import ROOT

SCHEMA = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
LAUNCHERS = ["aws.yaml", "gcp.yaml"]


def load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def ray_up_checks(config: dict) -> dict:
    """What `ray up` does to a config before it talks to the cloud; raises on an invalid one."""
    jsonschema.validate(config, SCHEMA)
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.mark.parametrize("name", LAUNCHERS)
def test_valid_for_ray_up(name):
    prepared = ray_up_checks(load(name))
    assert prepared["head_node_type"] == "head"
    assert prepared["available_node_types"]["head"]["max_workers"] == 0


def _mutations() -> dict:
    def unknown_key(c):
        c["max_worker"] = 3

    def fractional_custom_resource(c):
        c["available_node_types"]["gpu"]["resources"]["gpu_node"] = 0.5

    def node_type_without_node_config(c):
        del c["available_node_types"]["cpu"]["node_config"]

    def head_type_missing(c):
        c["head_node_type"] = "head-typo"

    def more_min_workers_than_max(c):
        c["available_node_types"]["cpu"]["min_workers"] = c["max_workers"] + 1

    def setup_commands_not_a_list(c):
        c["available_node_types"]["cpu"]["worker_setup_commands"] = "pip install -e ."

    return {f.__name__: f for f in (unknown_key, fractional_custom_resource, node_type_without_node_config,
                                    head_type_missing, more_min_workers_than_max, setup_commands_not_a_list)}


MUTATIONS = _mutations()


@pytest.mark.parametrize("name", LAUNCHERS)
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_broken_copy_is_rejected(name, mutation):
    broken = load(name)
    MUTATIONS[mutation](broken)
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        ray_up_checks(broken)


@pytest.mark.parametrize("name", LAUNCHERS)
def test_node_types_autoscale_and_head_has_no_gpu(name):
    config = load(name)
    types = {n.name: n for n in node_types(config)}
    assert set(types) == {"head", "cpu", "gpu"}
    head = types["head"]
    assert head.gpus == 0 and head.cpus == 0 and not head.custom, "the head runs drivers only"
    assert types["cpu"].gpus == 0 and types["cpu"].custom == {"cpu_node": 1}
    assert types["gpu"].gpus >= 1 and types["gpu"].custom == {"gpu_node": 1}
    start = " ".join(config["head_start_ray_commands"])
    assert "--num-gpus=0" in start
    for worker in ("cpu", "gpu"):
        spec = config["available_node_types"][worker]
        assert spec["min_workers"] == 0 < spec["max_workers"], f"{worker} nodes must scale from zero"


@pytest.mark.parametrize("name", LAUNCHERS)
def test_stages_land_on_their_node_types(name, cluster_config):
    assert_stages_pinned(node_types(load(name)), cluster_config)


def test_unpinned_sandbox_is_caught(cluster_config):
    """The pinning check can fail: a sandbox without `cpu_node` fits the GPU nodes too."""
    loose = cluster_config.model_copy(deep=True)
    loose.resources.sandbox.resources = {}
    with pytest.raises(AssertionError, match="sandbox may land on a GPU node"):
        assert_stages_pinned(node_types(load("aws.yaml")), loose)


def _pinned_torch() -> str:
    match = re.search(r'torch==\$\{BDC_TORCH_VERSION:-([0-9.]+)\}', (ROOT / "setup.sh").read_text())
    assert match, "setup.sh no longer pins torch the way this test reads it"
    return match.group(1)


@pytest.mark.parametrize("name", LAUNCHERS)
def test_setup_installs_the_package(name):
    prepared = ray_up_checks(load(name))
    assert prepared["file_mounts"]["~/bdc-ray"] == "."
    assert {".git", ".venv", "runs"} <= set(prepared["rsync_exclude"])
    torch = f'"torch=={_pinned_torch()}" --index-url https://download.pytorch.org/whl/cpu'
    for commands in (prepared["head_setup_commands"], prepared["available_node_types"]["cpu"]["worker_setup_commands"]):
        joined = "\n".join(commands)
        assert torch in joined, "CPU nodes must install the pinned CPU torch"
        assert joined.index(torch) < joined.index("pip install --quiet -e ."), "torch must come before the package"
    gpu = "\n".join(prepared["available_node_types"]["gpu"]["worker_setup_commands"])
    assert '-e ".[vllm]"' in gpu and "whl/cpu" not in gpu


@pytest.mark.parametrize("name", LAUNCHERS)
def test_images_match_installed_ray_and_auth_is_on(name):
    config = load(name)
    version = ray.__version__
    assert config["docker"]["image"] == f"rayproject/ray:{version}-py311-cpu"
    assert config["available_node_types"]["gpu"]["docker"]["worker_image"] == f"rayproject/ray:{version}-py311-gpu"
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(c for c in config[key] if "ray start" in c)
        assert "export RAY_AUTH_MODE=token;" in start
