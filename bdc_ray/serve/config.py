"""Every knob of the Serve stage: the `serve:` section of ray_config.yaml.

One model describes the HTTP side (bind address, route, auth), the replicas (autoscaling,
resources, batching, which engine generates: transformers or vLLM) and what a client may ask
for (limits). The Serve config YAML that
`serve run` / `serve deploy` accept is generated from it (deploy_config.py), and the same
values travel to every replica as application arguments, so the limits a replica enforces are
the ones written in the file.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bdc_ray.resources import ResourceSpec
from bdc_ray.sandbox import SandboxLimits


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class AutoscalingSection(_Strict):
    min_replicas: int = Field(1, ge=0, description="Fewest replicas kept running (0 scales to zero when idle).")
    max_replicas: int = Field(2, ge=1, description="Most replicas the autoscaler may start.")
    initial_replicas: int | None = Field(None, ge=0, description="Replicas at start; None: min_replicas.")
    target_ongoing_requests: float = Field(
        4.0, gt=0, description="Requests in flight per replica the autoscaler aims for (adds replicas above it)."
    )
    upscale_delay_s: float = Field(10.0, ge=0, description="How long demand must stay high before a replica is added.")
    downscale_delay_s: float = Field(60.0, ge=0, description="How long demand must stay low before a replica is removed.")

    @model_validator(mode="after")
    def _ordered(self) -> AutoscalingSection:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) must be >= min_replicas ({self.min_replicas})")
        if self.initial_replicas is not None and not self.min_replicas <= self.initial_replicas <= self.max_replicas:
            raise ValueError(
                f"initial_replicas ({self.initial_replicas}) must lie in [{self.min_replicas}, {self.max_replicas}]"
            )
        return self

    def serve_dict(self) -> dict:
        """Ray Serve's autoscaling_config."""
        return self.model_dump(exclude_none=True)


class BatchingSection(_Strict):
    enabled: bool = Field(
        True,
        description="Coalesce concurrent requests with serve.batch into one forward pass; false runs each alone "
        "(the baseline of benchmarks/serve_load.py).",
    )
    max_batch_size: int = Field(
        8, ge=1, le=1024,
        description="Rows (prompts x samples) decoding together, in one forward pass per step; larger requests are "
        "split. Requests that arrive while others decode join them as rows leave.",
    )
    batch_wait_timeout_s: float = Field(
        0.02, ge=0, le=10, description="How long the first request of a batch waits for others to join it."
    )


VLLM_LORA_KEYS = ("model", "dtype", "enable_lora", "max_lora_rank", "max_loras", "max_cpu_loras")
"""vllm.LLM arguments the engine sets itself (rank E*r from the experts; the rest from this section)."""


class VLLMSection(_Strict):
    """`serve.engine: vllm`: vLLM generates, each request's routing folded into one rank-E*r adapter.

    Of the other keys, `batching` still groups requests (max_batch_size rows per `generate` call,
    batch_wait_timeout_s), but a group that arrives during a call waits for the next one (vLLM's
    offline engine batches within a call); `device` is where the hypernetwork routes (cpu leaves
    the GPU to vLLM); `resources` must give each replica the GPUs vLLM uses.
    """

    dtype: str = Field("auto", description="dtype vLLM loads the base model in (auto: the model's own).")
    engine_args: dict[str, Any] = Field(
        default_factory=dict,
        description="More vllm.LLM arguments (gpu_memory_utilization, max_model_len, tensor_parallel_size, "
        f"enforce_eager...); not {', '.join(VLLM_LORA_KEYS)}, which the engine and the keys below set.",
    )
    max_loras: int = Field(
        4, ge=1, description="Adapters (distinct routings) one vLLM batch mixes, its GPU slots; rows of more wait."
    )
    max_cpu_loras: int = Field(16, ge=1, description="Adapters vLLM keeps loaded in CPU memory (>= max_loras).")
    max_adapters_on_disk: int = Field(
        64, ge=1, description="Folded adapter folders kept on disk, the least recently used deleted beyond it "
        "(>= max_cpu_loras and >= batching.max_batch_size). One folder: E*r*(d_in+d_out) numbers per module.",
    )
    adapter_dir: str | None = Field(
        None, description="Local folder the adapters are folded into (a fresh subfolder per replica, removed "
        "with it); None: the system's temporary folder."
    )
    adapter_dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "bfloat16", description="dtype of the folded adapters' tensors: vLLM computes LoRA in the model's dtype "
        "(bf16 for a bf16 model) whatever the file holds, so bfloat16 halves the writes and loses nothing there."
    )
    quant_step: float = Field(
        0.01, ge=0, le=1,
        description="Routing weights (r * softmax, each in [0, r]) are rounded to multiples of this before folding, "
        "each moving by at most quant_step / 2, and requests whose weights round alike share one adapter; 0: the "
        "exact weights (only identical routings share).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> VLLMSection:
        if self.max_cpu_loras < self.max_loras:
            raise ValueError(f"max_cpu_loras ({self.max_cpu_loras}) must be >= max_loras ({self.max_loras}), as vLLM requires")
        if self.max_adapters_on_disk < self.max_cpu_loras:
            raise ValueError(
                f"max_adapters_on_disk ({self.max_adapters_on_disk}) must be >= max_cpu_loras ({self.max_cpu_loras}): "
                "vLLM reloads an adapter from its folder"
            )
        reserved = sorted(set(self.engine_args) & set(VLLM_LORA_KEYS))
        if reserved:
            raise ValueError(f"engine_args may not set {reserved}: the engine sets them (max_loras, max_cpu_loras and "
                             "dtype are keys of this section; the rank is E*r of the experts)")
        return self


class ServeLimits(_Strict):
    """What one request may ask for; anything beyond is answered 400/413 before it costs anything."""

    max_body_bytes: int = Field(1_000_000, ge=1024, description="Request body size; larger bodies get 413.")
    max_prompt_chars: int = Field(8_000, ge=1, description="Characters of one prompt or problem statement.")
    max_prompts: int = Field(16, ge=1, description="Prompts in one /v1/completions request (a list prompt).")
    max_tokens: int = Field(512, ge=1, description="Upper bound of max_tokens (new tokens per sample).")
    max_n: int = Field(16, ge=1, description="Samples per prompt (n).")
    max_stop: int = Field(4, ge=0, description="Stop strings in one request.")
    max_stop_chars: int = Field(64, ge=1, description="Characters of one stop string.")
    max_messages: int = Field(64, ge=1, description="Messages in one /v1/chat/completions request.")
    max_logprobs: int = Field(20, ge=0, description="Most alternatives per token (logprobs, top_logprobs).")
    max_tests: int = Field(32, ge=0, description="Tests in one /solve request.")
    max_test_chars: int = Field(20_000, ge=16, description="Size of one test as compact JSON, in characters.")


class AuthSection(_Strict):
    """Bearer-token auth of the HTTP API (Ray's own token auth does not cover Serve's proxy)."""

    require: Literal["auto", "always", "never"] = Field(
        "auto",
        description="auto: required when `host` is not a loopback address; always / never: as said. A replica "
        "that requires auth but finds no key refuses to start.",
    )
    api_key_env: str | None = Field(
        "BDC_SERVE_API_KEY", description="Environment variable of the replicas that holds the key (None: not read)."
    )
    api_key_file: str | None = Field(
        None, description="File holding the key (a mounted secret); read by each replica, wins over api_key_env."
    )


class SolveSection(_Strict):
    sample_temperature: float = Field(
        0.8, ge=0, le=2, description="/solve temperature when n > 1 and the request gives none (n = 1 is greedy)."
    )
    max_tokens: int = Field(256, ge=1, description="/solve max_tokens when the request gives none.")
    sandbox_workers: int = Field(2, ge=1, le=64, description="Warm sandbox workers per replica for verifying candidates.")
    sandbox_limits: SandboxLimits = Field(
        default_factory=lambda: SandboxLimits(time_s=4.0, program_time_s=30.0),
        description="Limits every candidate runs under; a client can never change them.",
    )


class ServeConfig(_Strict):
    app_name: str = Field("bdc", pattern=r"^[A-Za-z0-9_.-]+$", description="Serve application name.")
    deployment_name: str = Field("BDCSolver", pattern=r"^[A-Za-z0-9_.-]+$", description="Serve deployment name.")
    model_name: str = Field("bdc-solver", min_length=1, description="Model id of /v1/models and the OpenAI endpoints.")
    route_prefix: str = Field("/", pattern=r"^/", description="HTTP path the application is mounted at.")
    host: str = Field("127.0.0.1", min_length=1, description="Address the HTTP proxy binds (0.0.0.0: every interface).")
    port: int = Field(8000, ge=1, le=65535, description="Port of the HTTP proxy.")
    request_timeout_s: float | None = Field(
        120.0, gt=0, description="Serve proxy's end-to-end timeout per HTTP request (None: none)."
    )
    experts: str | None = Field(
        None, description="Experts folder with manifest.json; None: <run>/disentangle/experts."
    )
    hypernet: str | None = Field(None, description="Hypernetwork folder; None: the run's customize output.")
    device: str = Field(
        "auto", description="Device of the model in each replica (vllm engine: of the hypernetwork): auto, cpu, cuda..."
    )
    engine: Literal["transformers", "vllm"] = Field(
        "transformers",
        description="What generates: transformers (CPU or GPU; composed LoRA, per-row weights in one pass, streaming) "
        "or vllm (GPU; each routing folded into one adapter, a LoRARequest per request; the `vllm` section).",
    )
    vllm: VLLMSection = Field(default_factory=VLLMSection, description="The vllm engine's settings.")
    autoscaling: AutoscalingSection = Field(default_factory=AutoscalingSection)
    resources: ResourceSpec = Field(
        default_factory=lambda: ResourceSpec(num_cpus=1.0), description="What each replica asks Ray for."
    )
    max_ongoing_requests: int = Field(
        32, ge=1, description="Requests one replica works on at once (batched together when batching is on)."
    )
    max_queued_requests: int = Field(
        256, ge=-1, description="Requests waiting in the proxy beyond that; more are refused with 503 (-1: no cap)."
    )
    batching: BatchingSection = Field(default_factory=BatchingSection)
    limits: ServeLimits = Field(default_factory=ServeLimits)
    auth: AuthSection = Field(default_factory=AuthSection)
    solve: SolveSection = Field(default_factory=SolveSection)
    deploy_in_pipeline: bool = Field(
        False,
        description="`bdc run`: deploy the application after the last stage (it keeps running after the "
        "pipeline ends); false only writes <run>/serve/serve_config.yaml.",
    )

    @model_validator(mode="after")
    def _batches_fit_in_flight(self) -> ServeConfig:
        if self.batching.enabled and self.max_ongoing_requests < self.batching.max_batch_size:
            raise ValueError(
                f"max_ongoing_requests ({self.max_ongoing_requests}) must be >= batching.max_batch_size "
                f"({self.batching.max_batch_size}), or no batch could ever fill"
            )
        if self.engine == "vllm" and self.vllm.max_adapters_on_disk < self.batching.max_batch_size:
            raise ValueError(
                f"vllm.max_adapters_on_disk ({self.vllm.max_adapters_on_disk}) must be >= batching.max_batch_size "
                f"({self.batching.max_batch_size}): the adapters of one generate call are all on disk at once"
            )
        if self.solve.max_tokens > self.limits.max_tokens:
            raise ValueError(
                f"solve.max_tokens ({self.solve.max_tokens}) is above limits.max_tokens ({self.limits.max_tokens})"
            )
        return self

    def resolve_paths(self, resolve: Callable[[str], str]) -> None:
        """Artifact folders and the key file are found relative to the config file's folder."""
        if self.experts is not None:
            self.experts = resolve(self.experts)
        if self.hypernet is not None:
            self.hypernet = resolve(self.hypernet)
        if self.auth.api_key_file:
            self.auth.api_key_file = resolve(os.path.expanduser(self.auth.api_key_file))
        if self.vllm.adapter_dir:
            self.vllm.adapter_dir = resolve(os.path.expanduser(self.vllm.adapter_dir))

    @property
    def auth_required(self) -> bool:
        if self.auth.require == "auto":
            return not is_loopback(self.host)
        return self.auth.require == "always"


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name may resolve anywhere: treat it as public
