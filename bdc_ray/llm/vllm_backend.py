"""vLLM's offline engine on GPU nodes, with the experts as LoRA requests.

vLLM has no CPU wheel and pins its own torch, so it is an optional extra that this project
cannot run in CI. Everything that decides WHAT is asked of vLLM (engine arguments, sampling
arguments, which LoRA request, reading the outputs) is therefore in pure functions over plain
data, unit-tested without vLLM; the class only turns their results into vLLM objects.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bdc_ray.llm.base import BaseLLM, GenerationStats, SamplingParams, Texts, truncate_at_stop

# Values vLLM's LoRAConfig accepts for max_lora_rank (320 and 512 only in recent releases).
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)

INSTALL_HINT = (
    "the vLLM backend needs vLLM, an optional extra: `pip install 'bdc-ray[vllm]'` on a GPU node "
    "(vLLM has no CPU build; on CPU use backend 'transformers')"
)


def adapter_rank(folder: str | Path) -> int:
    """The largest LoRA rank in a peft adapter folder (`r`, or any per-module `rank_pattern` entry)."""
    config = json.loads((Path(folder) / "adapter_config.json").read_text())
    return max([int(config["r"]), *(int(r) for r in (config.get("rank_pattern") or {}).values())])


def max_lora_rank_for(ranks: Sequence[int]) -> int:
    """The smallest rank vLLM accepts that fits every adapter."""
    needed = max(ranks, default=1)
    for allowed in VLLM_LORA_RANKS:
        if allowed >= needed:
            return allowed
    raise ValueError(f"LoRA rank {needed} exceeds vLLM's largest max_lora_rank {VLLM_LORA_RANKS[-1]}")


def lora_kwargs(ranks: Sequence[int], max_loras: int, max_cpu_loras: int | None = None) -> dict[str, Any]:
    """LoRA arguments of `vllm.LLM(...)`: the smallest allowed rank that fits every adapter, the
    adapters one batch may mix (`max_loras`, GPU slots) and those kept loaded in CPU memory."""
    kwargs: dict[str, Any] = {"enable_lora": True, "max_lora_rank": max_lora_rank_for(ranks), "max_loras": max_loras}
    if max_cpu_loras is not None:
        kwargs["max_cpu_loras"] = max_cpu_loras
    return kwargs


def adapters_lora(adapters: dict[str, str]) -> dict[str, Any]:
    """LoRA sized for the configured adapter folders, every one loadable at once (none: no LoRA)."""
    return lora_kwargs([adapter_rank(p) for p in adapters.values()], len(adapters)) if adapters else {}


def engine_kwargs(
    path: str, lora: dict[str, Any] | None = None, dtype: str = "auto", engine_args: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Arguments of `vllm.LLM(...)`: the model, its dtype, LoRA (`lora_kwargs`); the user's engine_args win."""
    return {"model": path, "dtype": dtype, **(lora or {}), **(engine_args or {})}


def import_vllm() -> tuple[Any, type]:
    """(the vllm module, its LoRARequest class), or an ImportError that says how to install vLLM."""
    try:
        import vllm
        from vllm.lora.request import LoRARequest
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return vllm, LoRARequest


def sampling_kwargs(sampling: SamplingParams) -> dict[str, Any]:
    """Arguments of `vllm.SamplingParams(...)`; vLLM treats temperature 0 as greedy, as we do."""
    return {
        "n": sampling.n,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_new_tokens,
        "stop": list(sampling.stop) or None,
        "seed": sampling.seed,
    }


def lora_request_args(adapter: str | None, adapters: dict[str, str]) -> tuple[str, int, str] | None:
    """(name, int id, folder) for `LoRARequest`, or None for the base model.

    vLLM caches adapters by integer id, so each name keeps one id (>= 1, by sorted name) for the
    life of the engine.
    """
    if adapter is None:
        return None
    if adapter not in adapters:
        raise KeyError(f"unknown adapter {adapter!r}; configured: {sorted(adapters)}")
    return adapter, sorted(adapters).index(adapter) + 1, adapters[adapter]


def collect_outputs(request_outputs: Sequence[Any], stop: list[str]) -> tuple[Texts, int, int]:
    """Texts per prompt and (prompt, completion) token counts from vLLM's `RequestOutput`s."""
    texts: Texts = []
    prompt_tokens = completion_tokens = 0
    for request in request_outputs:
        prompt_tokens += len(request.prompt_token_ids or ())
        texts.append([truncate_at_stop(o.text, stop) for o in request.outputs])
        completion_tokens += sum(len(o.token_ids) for o in request.outputs)
    return texts, prompt_tokens, completion_tokens


class VLLMBackend(BaseLLM):
    """`vllm.LLM` with every configured adapter available as a `LoRARequest`."""

    def __init__(
        self,
        path: str,
        *,
        adapters: dict[str, str] | None = None,
        dtype: str = "auto",
        engine_args: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        vllm, lora_request = import_vllm()
        self.name = name or f"vllm:{path}"
        self.adapters = dict(adapters or {})
        self._vllm = vllm
        self._lora_request = lora_request
        self._engine = vllm.LLM(**engine_kwargs(path, adapters_lora(self.adapters), dtype, engine_args))
        # The offline engine is not re-entrant; concurrent callers take turns (each call is batched inside).
        self._lock = threading.Lock()

    def generate_with_stats(
        self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None
    ) -> tuple[Texts, GenerationStats]:
        start = time.perf_counter()
        if not prompts:
            return [], GenerationStats()
        params = self._vllm.SamplingParams(**sampling_kwargs(sampling))
        lora = lora_request_args(adapter, self.adapters)
        request = self._lora_request(*lora) if lora else None
        with self._lock:
            outputs = self._engine.generate(prompts, params, lora_request=request, use_tqdm=False)
        texts, prompt_tokens, completion_tokens = collect_outputs(outputs, sampling.stop)
        return texts, GenerationStats(
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, seconds=time.perf_counter() - start
        )
