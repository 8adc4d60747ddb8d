"""What the cluster configs must agree on: the node types the stages of cluster/ray_config.yaml ask for."""

from __future__ import annotations

import pytest

from bdc_ray.config import BDCConfig, load_config
from bdc_ray.plan import NodeType
from bdc_ray.resources import ResourceSpec
from tests.conftest import ROOT

CLUSTER = ROOT / "cluster"


def stage_requests(cfg: BDCConfig) -> dict[str, ResourceSpec]:
    """What every actor, task, Train worker and Tune trial of every stage asks Ray for, each built
    by the function the stage itself calls at start-up (not read off the YAML)."""
    from ray import tune

    from bdc_ray.disentangle.experts import scaling_config
    from bdc_ray.serve.deploy_config import deployment_options

    scaling = scaling_config(cfg.stages.disentangle.experts.scaling)
    trial = tune.with_resources(lambda config: None, cfg.stages.customize.search.trial_resources())
    bundles = trial._resources.bundles  # what Tune reserves per trial (one bundle: the function trainable)
    assert len(bundles) == 1, bundles
    actor = deployment_options(cfg.serve)["ray_actor_options"]
    return (
        {"sandbox": cfg.resources.sandbox}
        | {f"agent {a.name}": a.resources for a in cfg.models.agents}
        | {
            "expert train worker": ResourceSpec.from_bundle(
                {"CPU": scaling.num_cpus_per_worker, "GPU": scaling.num_gpus_per_worker,
                 **scaling.additional_resources_per_worker}
            ),
            "tune trial": ResourceSpec.from_bundle(bundles[0]),
            "held-out generation": ResourceSpec(**cfg.stages.eval.resources.ray_options()),
            "serve replica": ResourceSpec(**actor),
        }
    )


def placements(node_types: list[NodeType], cfg: BDCConfig) -> dict[str, list[str]]:
    """Every stage's request -> the node types it can be scheduled on."""
    return {stage: [n.name for n in node_types if n.fits(spec)] for stage, spec in stage_requests(cfg).items()}


def assert_stages_pinned(node_types: list[NodeType], cfg: BDCConfig) -> None:
    """Sandboxes land on CPU-only nodes, whatever asks for a GPU on GPU nodes, nothing on the head."""
    by_name = {n.name: n for n in node_types}
    requests = stage_requests(cfg)
    where = placements(node_types, cfg)
    for stage, names in where.items():
        assert names, f"{stage}: no node type offers {requests[stage]}; node types: {node_types}"
        assert "head" not in names, f"{stage} could run on the head node"
    assert all(by_name[n].gpus == 0 for n in where["sandbox"]), f"sandbox may land on a GPU node: {where}"
    for stage in requests:
        if stage in GPU_STAGES or stage.startswith("agent "):
            assert all(by_name[n].gpus > 0 for n in where[stage]), f"{stage} may land on a CPU node: {where}"


GPU_STAGES = frozenset({"expert train worker", "tune trial", "held-out generation", "serve replica"})
"""What computes with the 7B models on a cluster, besides the agents: GPU nodes only."""


@pytest.fixture(scope="session")
def cluster_config() -> BDCConfig:
    return load_config(CLUSTER / "ray_config.yaml")
