"""Joining or starting the Ray cluster a command runs on, and the `ray:` section that says how.

The same entry point serves a laptop (a new local cluster) and `ray job submit` (the job's
driver joins the cluster it was submitted to through RAY_ADDRESS), so no stage has its own
connection logic: the pipeline, the CLI and the jobs call `init_ray` before any stage runs.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from bdc_ray.resources import ResourceSpec

log = logging.getLogger(__name__)

_started_here = False
"""Whether `init_ray` started the cluster itself: such a cluster never grows (no autoscaler)."""


class RaySection(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    address: str | None = Field(
        None,
        description="Cluster to join ('auto', 'ray://host:10001', ...). None: RAY_ADDRESS if set, else a new local cluster.",
    )
    namespace: str = Field("bdc", description="Ray namespace for the named actors of a run.")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a NEW local cluster (ignored when joining one).")
    include_dashboard: bool = Field(False, description="Start the dashboard with a new local cluster.")
    runtime_env: dict[str, Any] = Field(default_factory=dict, description="runtime_env for ray.init (env_vars, pip, working_dir...).")


def init_ray(section: RaySection) -> None:
    """Connect to `section.address` (or RAY_ADDRESS), else start a local cluster; idempotent."""
    import ray

    if ray.is_initialized():
        return
    address = section.address or os.environ.get("RAY_ADDRESS")
    kwargs: dict = {"namespace": section.namespace, "log_to_driver": True}
    if section.runtime_env:
        kwargs["runtime_env"] = section.runtime_env
    if address:
        ray.init(address=address, **kwargs)
    else:
        # "local" starts a new cluster even when a `ray start` cluster runs on this machine.
        ray.init(address="local", num_cpus=section.num_cpus, include_dashboard=section.include_dashboard, **kwargs)
        global _started_here
        _started_here = True
    log.info("Ray cluster resources: %s", ray.cluster_resources())


class ClusterTooSmall(RuntimeError):
    """What a stage must hold at once exceeds a cluster that cannot grow; names the config keys."""


Held = tuple[str, ResourceSpec, int]
"""(config key, what one asks for, how many): actors a stage keeps for its whole run."""


def shortfall(held: Sequence[Held], total: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """Resources the held actors ask for together beyond `total`: {name: (asked, total)}."""
    asked: dict[str, float] = {}
    for _, spec, count in held:
        for name, amount in spec.bundle().items():
            asked[name] = asked.get(name, 0.0) + amount * count
    return {name: (amount, total.get(name, 0.0)) for name, amount in asked.items() if amount > total.get(name, 0.0) + 1e-9}


def require_at_once(stage: str, held: Sequence[Held], *, can_grow: bool | None = None) -> None:
    """Check that a stage's long-lived actors fit the cluster together before it starts them.

    Each alone fits a node, so Ray finds nothing infeasible and the last one simply waits: the
    stage hangs with its CPUs idle and no message. A cluster this process started (`can_grow`
    None: ask `init_ray`) has no autoscaler, so that is an error naming the keys to lower; a
    joined cluster may add nodes, so it is a warning.
    """
    import ray

    missing = shortfall(held, ray.cluster_resources())
    if not missing:
        return
    asks = "; ".join(f"{key}: {count} x {spec.bundle()}" for key, spec, count in held if count)
    short = ", ".join(f"{name} {asked:g} asked, {total:g} in the cluster" for name, (asked, total) in missing.items())
    message = f"{stage} holds these actors at once ({asks}): {short}"
    grows = (not _started_here) if can_grow is None else can_grow
    if not grows:
        raise ClusterTooSmall(f"{message}. This local cluster cannot grow: lower those requests, or raise ray.num_cpus")
    log.warning("%s; they wait until the autoscaler adds nodes", message)
