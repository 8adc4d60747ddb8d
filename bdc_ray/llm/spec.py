"""`BackendSpec`: how one model is reached, as written in ray_config.yaml's `models` section.

One flat schema for all backends keeps the YAML uniform; fields a backend does not use are
ignored by it, and the description of each field says which backends read it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BackendSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["transformers", "openai", "vllm"] = Field(
        description="transformers: local CPU/GPU (+peft); openai: any OpenAI-compatible HTTP server; vllm: GPU offline engine."
    )
    path: str = Field(
        description="transformers/vllm: local folder or hub name for from_pretrained; openai: the model id on the server."
    )
    name: str | None = Field(None, description="Label in logs and metrics; default: derived from backend and path.")
    adapters: dict[str, str] = Field(
        default_factory=dict,
        description="LoRA adapters, name -> peft adapter folder (transformers, vllm). openai: not read; an adapter "
        "name is sent as the request's model id, as `vllm serve --lora-modules` expects.",
    )
    device: str = Field("auto", description="transformers: 'auto' (cuda if available, else cpu), 'cpu', 'cuda', 'cuda:1'...")
    dtype: str = Field(
        "auto",
        description="transformers: 'auto' (float32 on cpu, the checkpoint's dtype on gpu), 'float32', 'bfloat16', "
        "'float16'; vllm: passed through.",
    )
    threads: int | None = Field(
        None, ge=1, description="transformers on cpu: torch threads; None: OMP_NUM_THREADS (Ray sets it from num_cpus)."
    )
    max_batch_size: int = Field(16, ge=1, description="transformers: rows (prompts x samples) per forward batch.")
    base_url: str | None = Field(None, description="openai: e.g. http://127.0.0.1:8000/v1 (required for openai).")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="openai: environment variable holding the API key; unset means no auth header."
    )
    chat: bool = Field(False, description="openai: use /chat/completions with one user message instead of /completions.")
    max_concurrency: int = Field(8, ge=1, description="openai: requests in flight at once from one backend instance.")
    timeout_s: float = Field(60.0, gt=0, description="openai: per-request timeout in seconds.")
    max_retries: int = Field(4, ge=0, description="openai: retries on 429, 5xx, timeouts and connection errors.")
    vllm_engine_args: dict[str, Any] = Field(
        default_factory=dict, description="vllm: extra vllm.LLM(...) arguments; they override the derived ones."
    )

    @model_validator(mode="after")
    def _openai_needs_url(self) -> BackendSpec:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url (e.g. http://127.0.0.1:8000/v1)")
        return self

    def display_name(self) -> str:
        if self.name:
            return self.name
        return f"{self.backend}:{self.path.rstrip('/').rsplit('/', 1)[-1] or self.path}"
