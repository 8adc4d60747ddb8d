"""`make_llm`: a `BackendSpec` from the config becomes a live backend.

Backends are imported only when chosen, so a CPU node never imports vLLM and an HTTP-only
client never loads torch.
"""

from __future__ import annotations

from bdc_ray.llm.base import LLM
from bdc_ray.llm.spec import BackendSpec


def make_llm(spec: BackendSpec) -> LLM:
    """A GGUF entry is converted (once, cached) and its HF folder loaded like any other."""
    spec = spec.resolved()
    name = spec.display_name()
    if spec.backend == "transformers":
        from bdc_ray.llm.hf_backend import TransformersLLM

        return TransformersLLM(
            spec.path,
            adapters=spec.adapters,
            device=spec.device,
            dtype=spec.dtype,
            threads=spec.threads,
            max_batch_size=spec.max_batch_size,
            chat=bool(spec.chat),
            context=spec.context,
            name=name,
        )
    if spec.backend == "openai":
        from bdc_ray.llm.openai_backend import OpenAICompatibleLLM

        assert spec.base_url is not None  # BackendSpec validates it for backend 'openai'
        return OpenAICompatibleLLM(
            spec.base_url,
            spec.path,
            api_key_env=spec.api_key_env,
            chat=bool(spec.chat),
            context=spec.context,
            tokenizer=spec.tokenizer,
            max_concurrency=spec.max_concurrency,
            timeout_s=spec.timeout_s,
            max_retries=spec.max_retries,
            name=name,
        )
    from bdc_ray.llm.vllm_backend import VLLMBackend

    return VLLMBackend(
        spec.path, adapters=spec.adapters, dtype=spec.dtype, engine_args=spec.vllm_engine_args, name=name
    )
