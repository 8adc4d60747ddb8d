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
        description="transformers/vllm: local folder or hub name for from_pretrained (with gguf_file: the folder "
        "holding the GGUF, a path or `package:DIST/FOLDER`); openai: the model id on the server."
    )
    gguf_file: str | list[str] | None = Field(
        None,
        description="transformers/vllm: a GGUF checkpoint, a file name in `path` (or a path, or `package:DIST/FILE`), "
        "or the ordered parts of one split across files; converted once to an HF folder under gguf_cache "
        "(llm/gguf.py), which every backend, peft, Ray Train and Serve then load.",
    )
    gguf_sha256: str | None = Field(
        None, pattern=r"^[0-9a-fA-F]{64}$", description="Expected SHA-256 of the whole GGUF; a mismatch fails the load."
    )
    gguf_cache: str = Field(
        "~/.cache/bdc-ray/models",
        description="Where converted GGUF folders are kept (agents: models.build_root overrides this default).",
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
    chat: bool | None = Field(
        None,
        description="Send each prompt as one user message: transformers renders it with the model's own chat "
        "template (when it has one); openai uses /chat/completions. None: on for instruct-style agents, else off.",
    )
    context: int | None = Field(
        None,
        ge=16,
        description="Tokens the model attends to; longer prompts are cut from the left with a warning. transformers: "
        "None = the model config's max_position_embeddings. openai: the served model's context, used with `tokenizer` "
        "(None: prompts are sent as they are and the server decides).",
    )
    tokenizer: str | None = Field(
        None, description="openai: a local folder with the served model's tokenizer, to cut prompts to `context` client-side."
    )
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
        if self.backend == "openai" and self.gguf_file:
            raise ValueError("gguf_file is for local backends; an openai server loads its own weights")
        if self.backend == "vllm" and self.chat:
            raise ValueError("backend 'vllm' does not apply chat templates; serve the model with `vllm serve` and use "
                             "backend 'openai' with chat: true")
        if (self.context is None) != (self.tokenizer is None) and self.backend == "openai":
            raise ValueError("backend 'openai' cuts prompts client-side only with both `context` and `tokenizer`")
        return self

    @property
    def gguf_parts(self) -> list[str]:
        if self.gguf_file is None:
            return []
        return [self.gguf_file] if isinstance(self.gguf_file, str) else list(self.gguf_file)

    def resolved(self, gguf_cache: str | None = None) -> BackendSpec:
        """This spec with a GGUF entry replaced by its converted HF folder (converting it on first
        use); any other spec unchanged. Every loader calls it, so none ever reads a GGUF itself."""
        if not self.gguf_parts:
            return self
        from bdc_ray.llm.gguf import ensure_converted

        # Named after the file, not the entry: agents sharing one GGUF share one folder.
        folder = ensure_converted(
            self.gguf_parts, gguf_cache or self.gguf_cache, base=self.path, expected_sha256=self.gguf_sha256
        )
        return self.model_copy(update={"path": str(folder), "gguf_file": None, "gguf_sha256": None})

    def display_name(self) -> str:
        if self.name:
            return self.name
        return f"{self.backend}:{self.path.rstrip('/').rsplit('/', 1)[-1] or self.path}"
