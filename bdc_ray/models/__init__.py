"""Models of a run: the `models:` section (agents, tiny build root) and what each agent runs on."""

from bdc_ray.models.config import AgentConfig, ModelsSection, PromptSettings
from bdc_ray.models.resolve import first_agent_model, resolve_backends

__all__ = ["AgentConfig", "ModelsSection", "PromptSettings", "first_agent_model", "resolve_backends"]
