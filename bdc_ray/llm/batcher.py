"""Coalescing concurrent generate calls into batched backend calls.

Tree search issues many small requests at once (every problem, every agent, every state).
One request at a time leaves a model mostly idle (a tiny model generates ~200 tokens/s at
batch 1 and ~900 at batch 8 on CPU), so requests that arrive within a short window and share
sampling settings and adapter go to the backend as ONE call, and each caller gets back exactly
its own texts. Plain asyncio, no Ray: the actor wraps it and tests drive it directly.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

from bdc_ray.llm.base import LLM, GenerationStats, SamplingParams, Texts


@dataclass
class _Pending:
    prompts: list[str]
    sampling: SamplingParams
    adapter: str | None
    future: asyncio.Future = field(repr=False)

    @property
    def key(self) -> tuple[str, str | None]:
        return self.sampling.model_dump_json(), self.adapter


@dataclass
class BatchStats:
    requests: int = 0
    backend_calls: int = 0
    prompts: int = 0
    busy_s: float = 0.0
    tokens: GenerationStats = field(default_factory=GenerationStats)


class Batcher:
    """Queue requests; after the first arrives wait `window_s` for more, then run them grouped."""

    def __init__(self, llm: LLM, window_s: float = 0.01, max_prompts: int = 64):
        self.llm = llm
        self.window_s = window_s
        self.max_prompts = max_prompts
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task | None = None

    async def generate(
        self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None
    ) -> tuple[Texts, GenerationStats]:
        if not prompts:
            return [], GenerationStats()
        loop = asyncio.get_running_loop()
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        pending = _Pending(list(prompts), sampling, adapter, loop.create_future())
        self.stats.requests += 1
        await self._queue.put(pending)
        return await pending.future

    async def _drain(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            deadline = time.monotonic() + self.window_s
            while sum(len(p.prompts) for p in batch) < self.max_prompts:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            groups: dict[tuple[str, str | None], list[_Pending]] = defaultdict(list)
            for p in batch:
                groups[p.key].append(p)
            for members in groups.values():
                await self._run_group(members)

    async def _run_group(self, members: list[_Pending]) -> None:
        prompts = [q for p in members for q in p.prompts]
        started = time.perf_counter()
        try:
            texts, stats = await self.llm.agenerate_with_stats(prompts, members[0].sampling, members[0].adapter)
        except Exception as err:  # every caller of the failed call learns why
            for p in members:
                if not p.future.done():
                    p.future.set_exception(err)
            return
        self.stats.backend_calls += 1
        self.stats.prompts += len(prompts)
        self.stats.busy_s += time.perf_counter() - started
        self.stats.tokens = self.stats.tokens + stats
        offset = 0
        for p in members:
            mine = texts[offset : offset + len(p.prompts)]
            offset += len(p.prompts)
            share = len(p.prompts) / len(prompts)
            part = GenerationStats(
                prompt_tokens=round(stats.prompt_tokens * share),
                completion_tokens=round(stats.completion_tokens * share),
                seconds=stats.seconds,
            )
            if not p.future.done():
                p.future.set_result((mine, part))
