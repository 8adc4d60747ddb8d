"""The Boost stage of a whole config, as the pipeline calls it, for tests that start from a config."""

from __future__ import annotations

from bdc_ray.boost import run_boost_stage
from bdc_ray.config import BDCConfig


def boost(cfg: BDCConfig) -> dict:
    """Run the stage of `cfg` on the cluster the test joined; the summary."""
    return run_boost_stage(cfg.layout, cfg.stages.boost, cfg.models, cfg.sandbox, cfg.resources.sandbox, cfg.suite)
