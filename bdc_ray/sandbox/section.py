"""The `sandbox:` section of ray_config.yaml: the pool's actors, their warm workers, their limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bdc_ray.sandbox.limits import SandboxLimits


class SandboxSection(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    actors: int | None = Field(
        None, ge=1, description="Sandbox actors in the pool. None: one per alive node of the cluster."
    )
    workers_per_actor: int = Field(2, ge=1, le=256, description="Warm sandbox worker processes inside each actor.")
    limits: SandboxLimits = Field(default_factory=SandboxLimits)
