"""Joining or starting the Ray cluster a command runs on, and the `ray:` section that says how.

The same entry point serves a laptop (a new local cluster) and `ray job submit` (the job's
driver joins the cluster it was submitted to through RAY_ADDRESS), so no stage has its own
connection logic: the pipeline, the CLI and the jobs call `init_ray` before any stage runs.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)


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
    log.info("Ray cluster resources: %s", ray.cluster_resources())
