"""Agents -> backends, and the experts' default base model: the first agent's local weights."""

from __future__ import annotations

import pytest

from bdc_ray.models import AgentConfig, first_agent_model


@pytest.mark.ray
def test_without_a_base_model_the_first_agents_weights_are_adapted(ray_local, tmp_path) -> None:
    local = AgentConfig(name="a", model={"backend": "transformers", "path": str(tmp_path)})
    remote = AgentConfig(name="b", model={"backend": "openai", "path": "m", "base_url": "http://127.0.0.1:1/v1"})
    assert first_agent_model([local, remote], "/unused") == str(tmp_path)
    with pytest.raises(ValueError, match="need local weights"):
        first_agent_model([remote, local], "/unused")
    with pytest.raises(ValueError, match="no base model"):
        first_agent_model([], "/unused")
