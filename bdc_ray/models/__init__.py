"""Models of a run: the `models:` section (agents, tiny build root) and what each agent runs on."""

from bdc_ray.models.config import AgentConfig, ModelsSection, PromptSettings, StudentConfig
from bdc_ray.models.resolve import first_agent_model, local_agent_models, resolve_backends, student_model

__all__ = ["AgentConfig", "ModelsSection", "PromptSettings", "StudentConfig", "first_agent_model", "local_agent_models",
           "resolve_backends", "student_model"]
