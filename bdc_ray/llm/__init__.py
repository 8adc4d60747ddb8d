"""LLM backends behind one interface: transformers (+peft), vLLM, and OpenAI-compatible HTTP.

Importing this package is cheap: backends load torch, httpx or vLLM only when `make_llm` builds them.
"""

from bdc_ray.llm.base import LLM, BaseLLM, GenerationStats, SamplingParams, context_length
from bdc_ray.llm.factory import make_llm
from bdc_ray.llm.spec import BackendSpec

__all__ = ["LLM", "BackendSpec", "BaseLLM", "GenerationStats", "SamplingParams", "context_length", "make_llm"]
