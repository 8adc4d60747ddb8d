"""What the cluster configs must agree on: the node types the stages of cluster/ray_config.yaml ask for."""

from __future__ import annotations

from dataclasses import dataclass
import pytest

from bdc_ray.config import BDCConfig, load_config
from bdc_ray.resources import ResourceSpec
from tests.conftest import ROOT

CLUSTER = ROOT / "cluster"


@dataclass(frozen=True)
class NodeType:
    """The Ray resources one node type offers, however the config spells them."""

    name: str
    cpus: float
    gpus: float
    custom: dict[str, float]

    def fits(self, spec: ResourceSpec) -> bool:
        return (
            spec.num_cpus <= self.cpus
            and spec.num_gpus <= self.gpus
            and all(amount <= self.custom.get(key, 0) for key, amount in spec.resources.items())
        )


def placements(node_types: list[NodeType], cfg: BDCConfig) -> dict[str, list[str]]:
    """Every stage's actor spec -> the node types it can be scheduled on."""
    specs = {"sandbox": cfg.resources.sandbox} | {f"agent {a.name}": a.resources for a in cfg.models.agents}
    return {stage: [n.name for n in node_types if n.fits(spec)] for stage, spec in specs.items()}


def assert_stages_pinned(node_types: list[NodeType], cfg: BDCConfig) -> None:
    """Sandboxes land on CPU-only nodes, GPU agents on GPU nodes, and nothing on the head."""
    by_name = {n.name: n for n in node_types}
    where = placements(node_types, cfg)
    for stage, names in where.items():
        assert names, f"{stage}: no node type offers {stage}'s resources; node types: {node_types}"
        assert "head" not in names, f"{stage} could run on the head node"
    assert all(by_name[n].gpus == 0 for n in where["sandbox"]), f"sandbox may land on a GPU node: {where}"
    for agent in cfg.models.agents:
        if agent.resources.num_gpus > 0:
            assert all(by_name[n].gpus > 0 for n in where[f"agent {agent.name}"])


@pytest.fixture(scope="session")
def cluster_config() -> BDCConfig:
    return load_config(CLUSTER / "ray_config.yaml")
