"""How many nodes of each type a stage's concurrent requests need: first-fit-decreasing bin
packing onto a cluster file's node types, within their max_workers.

Why first-fit-decreasing: it is close to what Ray does when requests are pending (the autoscaler
adds nodes for resource demands it cannot place and the scheduler packs them), it is simple
enough to check by hand, and it never needs more than about 11/9 of the optimal node count. Two
rules follow Ray: a request without GPUs goes to GPU-free node types first (Ray keeps GPU nodes
for GPU work), and the workers of one Ray Train run or Tune trial are placed together or not at
all (a run starts only when its whole worker group fits). The head (its one node) and the
`min_workers` nodes of each type are there from the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from bdc_ray.plan.nodes import EPSILON, ClusterFile, NodeType


@dataclass(frozen=True)
class Request:
    """`units` of something, each `per_unit` bundles that must be placed together."""

    bundle: Mapping[str, float]
    units: int
    per_unit: int = 1


@dataclass(frozen=True)
class Packing:
    nodes: dict[str, int]
    """Worker nodes of each type in use (min_workers included, the head left out)."""
    placed: list[int]
    """Units of each request placed at once."""


class _Nodes:
    """The nodes up so far and what each still offers."""

    def __init__(self, cluster: ClusterFile):
        self.cluster = cluster
        self.up: list[tuple[NodeType, dict[str, float]]] = []
        for node_type in cluster.node_types:
            for _ in range(1 if node_type.head else node_type.min_workers):
                self.up.append((node_type, dict(node_type.resources)))

    def snapshot(self) -> list[tuple[NodeType, dict[str, float]]]:
        return [(t, dict(free)) for t, free in self.up]

    def workers(self, node_type: NodeType | None = None) -> int:
        return sum(1 for t, _ in self.up if not t.head and (node_type is None or t.name == node_type.name))

    def can_start(self, node_type: NodeType) -> bool:
        below_cap = self.cluster.max_workers is None or self.workers() < self.cluster.max_workers
        return not node_type.head and below_cap and self.workers(node_type) < node_type.max_workers

    def place(self, bundle: Mapping[str, float]) -> bool:
        """One bundle on a node that is up, else on a new node; False when neither is allowed."""
        fitting = [t for t in self.cluster.node_types if t.fits(bundle)]
        tiers = [fitting] if bundle.get("GPU", 0) > 0 else [[t for t in fitting if t.gpus == 0], [t for t in fitting if t.gpus > 0]]
        for tier in tiers:
            names = {t.name for t in tier}
            for node_type, free in self.up:
                if node_type.name in names and _holds(free, bundle):
                    _take(free, bundle)
                    return True
            for node_type in tier:
                if self.can_start(node_type):
                    free = dict(node_type.resources)
                    _take(free, bundle)
                    self.up.append((node_type, free))
                    return True
        return False


def _holds(free: Mapping[str, float], bundle: Mapping[str, float]) -> bool:
    return all(amount <= free.get(key, 0.0) + EPSILON for key, amount in bundle.items() if amount > 0)


def _take(free: dict[str, float], bundle: Mapping[str, float]) -> None:
    for key, amount in bundle.items():
        free[key] = free.get(key, 0.0) - amount


def pack(requests: Sequence[Request], cluster: ClusterFile) -> Packing:
    """Place every unit of every request, biggest first (GPUs, then CPUs); a unit whose bundles
    cannot all be placed is left out whole."""
    nodes = _Nodes(cluster)
    order = sorted(
        ((i, r) for i, r in enumerate(requests) for _ in range(r.units)),
        key=lambda item: (-item[1].bundle.get("GPU", 0.0), -item[1].bundle.get("CPU", 0.0)),
    )
    placed = [0] * len(requests)
    for index, request in order:
        before = nodes.snapshot()
        if all(nodes.place(request.bundle) for _ in range(request.per_unit)):
            placed[index] += 1
        else:
            nodes.up = before
    counts: dict[str, int] = {}
    for node_type, _ in nodes.up:
        if not node_type.head:
            counts[node_type.name] = counts.get(node_type.name, 0) + 1
    return Packing(counts, placed)
