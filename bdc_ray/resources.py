"""What one actor or task of a stage asks Ray for.

Custom resources are how a stage lands on a node type: give GPU nodes `{"gpu_node": 1}` in the
cluster config and ask for `{"gpu_node": 0.01}` here, and the autoscaler starts the right nodes.
"""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator


def non_negative(value: dict[str, float]) -> dict[str, float]:
    """Ray refuses negative resource amounts only when an actor is created; refuse them at start-up."""
    bad = {k: v for k, v in value.items() if v < 0}
    if bad:
        raise ValueError(f"resource amounts must be >= 0, got {bad}")
    return value


class ResourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    resources: dict[str, float] = Field(
        default_factory=dict, description="Custom resources, e.g. {'cpu_node': 0.01} to land on CPU worker nodes."
    )

    @field_validator("resources")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        return non_negative(value)

    def ray_options(self) -> dict[str, Any]:
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "resources": dict(self.resources)}

    def bundle(self) -> dict[str, float]:
        """The same request as one Ray resource dict (what a node must offer to hold it); a zero
        GPU count is left out, as Ray leaves it out of a bundle."""
        gpus = {"GPU": self.num_gpus} if self.num_gpus else {}
        return {"CPU": self.num_cpus, **gpus, **self.resources}

    @classmethod
    def from_bundle(cls, bundle: Mapping[str, float]) -> ResourceSpec:
        """A Ray resource dict as ScalingConfig and Tune spell it ({CPU, GPU, custom...}; Tune's
        `with_resources` also takes lowercase cpu / gpu). A bundle without CPU asks for none."""
        rest = dict(bundle)
        cpus = sum(rest.pop(key, 0.0) for key in ("CPU", "cpu"))
        gpus = sum(rest.pop(key, 0.0) for key in ("GPU", "gpu"))
        return cls(num_cpus=cpus, num_gpus=gpus, resources=rest)
