"""The node types a cluster file offers, read the way Ray and KubeRay read them.

Two formats. The Ray cluster launcher's YAML: `available_node_types.<name>.resources` (CPU, GPU
and custom resources in one mapping), `min_workers` / `max_workers` per type, the cluster-wide
`max_workers` cap and `head_node_type`. KubeRay's RayCluster (or the cluster spec inside a RayJob
or RayService): a group's pods offer the CPUs and GPUs of their container limits (`cpu`,
`nvidia.com/gpu`) unless rayStartParams `num-cpus` / `num-gpus` say otherwise, and the custom
resources of rayStartParams `resources`, KubeRay's quoted JSON; `minReplicas` / `maxReplicas`
bound each group. `bdc plan` fits every request of a config to these, and tests/cluster checks
the committed cluster files with the same reading, so the two cannot disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from bdc_ray.resources import ResourceSpec

EPSILON = 1e-9
"""Fractional requests (gpu_node: 0.01) add up in floating point; Ray counts in 1e-4 units."""

LAUNCHER_DEFAULT_MAX_WORKERS = 2
"""What the cluster launcher's defaults give `max_workers` when a file leaves it out."""

KUBERAY_KINDS = {"RayCluster": ("spec",), "RayJob": ("spec", "rayClusterSpec"), "RayService": ("spec", "rayClusterConfig")}
"""Where each KubeRay kind keeps its cluster spec."""


class ClusterFileError(ValueError):
    """A cluster file that cannot be read as a launcher config or a KubeRay manifest."""


@dataclass(frozen=True)
class NodeType:
    """What one node of a type offers Ray, and how many of it the autoscaler may run."""

    name: str
    resources: dict[str, float]
    min_workers: int = 0
    max_workers: int = 0
    head: bool = False

    @property
    def cpus(self) -> float:
        return self.resources.get("CPU", 0.0)

    @property
    def gpus(self) -> float:
        return self.resources.get("GPU", 0.0)

    @property
    def custom(self) -> dict[str, float]:
        return {k: v for k, v in self.resources.items() if k not in ("CPU", "GPU")}

    def fits(self, request: ResourceSpec | Mapping[str, float]) -> bool:
        """Whether one node of this type, empty, holds the request (a ResourceSpec or a bundle)."""
        bundle = request.bundle() if isinstance(request, ResourceSpec) else request
        return all(amount <= self.resources.get(key, 0.0) + EPSILON for key, amount in bundle.items() if amount > 0)


@dataclass(frozen=True)
class ClusterFile:
    """The node types of one cluster file; `max_workers` caps worker nodes of all types together."""

    path: str
    node_types: list[NodeType]
    max_workers: int | None = None

    def describe(self) -> str:
        """'head: {CPU: 0}, cpu: {CPU: 16, cpu_node: 1}, ...': what an error message lists."""
        return ", ".join(f"{n.name}: {format_bundle(n.resources)}" for n in self.node_types)



def format_bundle(bundle: Mapping[str, float]) -> str:
    """{CPU: 4, GPU: 1, gpu_node: 0.01}, the way the config files spell a request."""
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in bundle.items()) + "}"


def launcher_node_types(config: dict[str, Any]) -> list[NodeType]:
    """The node types of a cluster-launcher config; the head type runs no more than its one node."""
    head = config.get("head_node_type")
    default_max = config.get("max_workers", LAUNCHER_DEFAULT_MAX_WORKERS)
    out = []
    for name, spec in config["available_node_types"].items():
        is_head = name == head
        out.append(NodeType(
            name,
            {k: float(v) for k, v in (spec.get("resources") or {}).items()},
            min_workers=0 if is_head else int(spec.get("min_workers", 0)),
            max_workers=0 if is_head else int(spec.get("max_workers", default_max)),
            head=is_head,
        ))
    return out


def kuberay_custom_resources(params: dict[str, Any]) -> dict[str, float]:
    """rayStartParams.resources is KubeRay's quoted JSON string: '"{\\"cpu_node\\": 1}"'."""
    raw = params.get("resources")
    if raw is None:
        return {}
    value = json.loads(raw)
    return json.loads(value) if isinstance(value, str) else value


def kubernetes_quantity(value: Any) -> float:
    """A Kubernetes CPU/GPU quantity: 8, "8", "500m"."""
    return float(value[:-1]) / 1000 if isinstance(value, str) and value.endswith("m") else float(value)


def kuberay_group(name: str, group: dict[str, Any], head: bool = False) -> NodeType:
    """The Ray resources a group's pods offer: num-cpus/num-gpus params win over container limits."""
    params = group.get("rayStartParams", {})
    limits = group["template"]["spec"]["containers"][0]["resources"].get("limits", {})
    resources = {
        "CPU": kubernetes_quantity(params.get("num-cpus", limits.get("cpu", 0))),
        "GPU": kubernetes_quantity(params.get("num-gpus", limits.get("nvidia.com/gpu", 0))),
        **kuberay_custom_resources(params),
    }
    if head:
        return NodeType(name, resources, head=True)
    return NodeType(name, resources, min_workers=int(group.get("minReplicas", 0)),
                    max_workers=int(group.get("maxReplicas", group.get("replicas", 0))))


def kuberay_node_types(spec: dict[str, Any]) -> list[NodeType]:
    """The head group and every worker group of a RayCluster spec."""
    return [kuberay_group("head", spec["headGroupSpec"], head=True)] + [
        kuberay_group(g["groupName"], g) for g in spec.get("workerGroupSpecs") or []
    ]


def kuberay_cluster_spec(doc: dict[str, Any]) -> dict[str, Any]:
    """The RayCluster spec of a RayCluster, RayJob or RayService manifest."""
    node: Any = doc
    for key in KUBERAY_KINDS[doc["kind"]]:
        node = node[key]
    return node


def read_cluster_file(path: str | Path) -> ClusterFile:
    """The node types of a launcher YAML or of the first KubeRay cluster in a manifest file."""
    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if isinstance(d, dict)]
    except (OSError, yaml.YAMLError) as err:
        raise ClusterFileError(f"{path}: cannot read it ({err})") from None
    try:
        for doc in docs:
            if doc.get("kind") in KUBERAY_KINDS:
                return ClusterFile(str(path), kuberay_node_types(kuberay_cluster_spec(doc)))
            if "available_node_types" in doc:
                cap = doc.get("max_workers")
                return ClusterFile(str(path), launcher_node_types(doc), None if cap is None else int(cap))
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise ClusterFileError(f"{path}: a node type cannot be read ({type(err).__name__}: {err})") from None
    raise ClusterFileError(
        f"{path}: neither a Ray cluster-launcher config (available_node_types) nor a KubeRay "
        f"{' / '.join(KUBERAY_KINDS)} manifest"
    )
