"""The one interface every LLM backend implements, and the pieces they all share.

Callers (agents, evaluation, serving) only ever see `generate(prompts, sampling, adapter)`, so a
run moves from a tiny CPU model to a vLLM cluster or a hosted endpoint by changing config, not
code. Token counts travel with every call because tokens/s is a first-class metric.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

Texts = list[list[str]]


class SamplingParams(BaseModel):
    """How to sample; the same meaning on every backend (OpenAI's completion semantics)."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(1, ge=1, description="Samples per prompt.")
    temperature: float = Field(0.0, ge=0.0, description="0 means greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(256, ge=1, description="Upper bound on generated tokens per sample.")
    stop: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="Generation ends at the first of these; it is not part of the returned text."
    )
    seed: int | None = Field(None, description="Same seed, prompts and batch size give the same samples.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class GenerationStats(BaseModel):
    """Work done by one call: prompt tokens counted once per prompt, completion tokens over all samples."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0

    def __add__(self, other: GenerationStats) -> GenerationStats:
        return GenerationStats(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            seconds=self.seconds + other.seconds,
        )


@runtime_checkable
class LLM(Protocol):
    """Every backend. `adapter=None` is the base model; a name selects one of the backend's LoRA adapters."""

    name: str

    def generate(self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None) -> Texts: ...

    async def agenerate(self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None) -> Texts: ...

    def generate_with_stats(
        self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None
    ) -> tuple[Texts, GenerationStats]: ...

    async def agenerate_with_stats(
        self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None
    ) -> tuple[Texts, GenerationStats]: ...


class BaseLLM(ABC):
    """Derives the plain and async calls from one blocking `generate_with_stats`.

    A backend that is natively async (HTTP) overrides `agenerate_with_stats` as well.
    """

    name: str

    @abstractmethod
    def generate_with_stats(
        self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None
    ) -> tuple[Texts, GenerationStats]: ...

    def generate(self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None) -> Texts:
        return self.generate_with_stats(prompts, sampling, adapter)[0]

    async def agenerate_with_stats(
        self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None
    ) -> tuple[Texts, GenerationStats]:
        # A blocking model call must not stall the event loop of an async Ray actor or a web server.
        return await asyncio.to_thread(self.generate_with_stats, prompts, sampling, adapter)

    async def agenerate(self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None) -> Texts:
        return (await self.agenerate_with_stats(prompts, sampling, adapter))[0]


def truncate_at_stop(text: str, stop: list[str]) -> str:
    """Cut at the earliest stop string, so the result never depends on the order of `stop`."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if i != -1 and i < cut:
            cut = i
    return text[:cut]


def run_blocking(make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, even when this thread already runs a loop.

    `asyncio.run` refuses to nest; inside a running loop (a notebook, an async actor calling the
    sync API) the coroutine gets a fresh loop on a helper thread instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


def generated_length(row: list[int], stop_ids, pad_id: int | None) -> int:
    """Tokens a model produced in one row of `generate`'s output: up to and including the first
    stop token, without the padding after it."""
    for i, token in enumerate(row):
        if token in stop_ids:
            return i + 1
        if token == pad_id:
            return i
    return len(row)


def context_length(config) -> int | None:
    """Positions a model was built for, if its config states them: the one reader every stage uses
    (Llama, Qwen, Gemma: max_position_embeddings; GPT-2: n_positions), so the backends, training
    and Serve never disagree on how long a sequence may be."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
