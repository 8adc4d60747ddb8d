"""Joining or starting the Ray cluster a command runs on.

The same entry point serves a laptop (a new local cluster) and `ray job submit` (the job's
driver joins the cluster it was submitted to through RAY_ADDRESS), so no stage has its own
connection logic.
"""

from __future__ import annotations

import logging
import os

import ray

from bdc_ray.config import RaySection

log = logging.getLogger(__name__)


def init_ray(section: RaySection) -> None:
    """Connect to `section.address` (or RAY_ADDRESS), else start a local cluster; idempotent."""
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
