"""Coalescing concurrent generate calls into batched backend calls.

Tree search issues many small requests at once (every problem, every agent, every state).
One request at a time leaves a model mostly idle (a tiny model generates ~200 tokens/s at
batch 1 and ~900 at batch 8 on CPU), so requests that arrive within a short window and share
sampling settings and adapter (a group) go to the backend as ONE call, and each caller gets back
exactly its own texts. Each group is served by its own task, and calls run concurrently up to
`max_concurrent_calls`: against a latency-bound backend (an OpenAI-compatible server, vLLM's
server) no group waits for another group's round trip. While every call slot is taken, requests
queue and leave as one batch when a slot frees, so a backend that runs one call at a time
(transformers under its lock) gets full batches: there one slot is right, because a second call
would only take a smaller batch to wait at the lock (measured: benchmarks/batcher_groups.py).
Plain asyncio, no Ray: the actor wraps it and tests drive it directly.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bdc_ray.llm.base import LLM, GenerationStats, SamplingParams, Texts

GroupKey = tuple[str, "str | None"]


@dataclass
class _Pending:
    prompts: list[str]
    sampling: SamplingParams
    adapter: str | None
    future: asyncio.Future = field(repr=False)
    arrived: float = field(default_factory=time.monotonic)

    @property
    def key(self) -> GroupKey:
        return self.sampling.model_dump_json(), self.adapter


@dataclass
class BatchStats:
    requests: int = 0
    backend_calls: int = 0
    prompts: int = 0
    busy_s: float = 0.0
    """Wall time with at least one backend call in flight (concurrent calls counted once)."""
    call_s: float = 0.0
    """Sum of the backend calls' durations: call_s / busy_s is the mean number of calls in flight."""
    tokens: GenerationStats = field(default_factory=GenerationStats)


def backend_concurrency(llm: LLM) -> int:
    """Calls a backend serves at once: its own `max_concurrency` when it declares one (the
    OpenAI-compatible backend's HTTP requests in flight), else 1 (transformers and vLLM's offline
    engine run one call at a time)."""
    declared = getattr(llm, "max_concurrency", None)
    return declared if isinstance(declared, int) and declared >= 1 else 1


class Batcher:
    """Queue requests by group; after a group's first request arrives wait `window_s` for more
    (or until `max_prompts` are queued), then run them as one call when a call slot is free.

    `max_concurrent_calls` None = `backend_concurrency(llm)`; 1 = one call at a time.
    """

    def __init__(self, llm: LLM, window_s: float = 0.01, max_prompts: int = 64, max_concurrent_calls: int | None = None):
        calls = backend_concurrency(llm) if max_concurrent_calls is None else max_concurrent_calls
        if calls < 1:
            raise ValueError(f"max_concurrent_calls must be at least 1, got {calls}")
        self.llm = llm
        self.window_s = window_s
        self.max_prompts = max_prompts
        self.max_concurrent_calls = calls
        self.stats = BatchStats()
        self._queues: dict[GroupKey, list[_Pending]] = {}
        self._full: dict[GroupKey, asyncio.Event] = {}
        self._servers: dict[GroupKey, asyncio.Task] = {}
        self._calls: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks
        self._slots: asyncio.Semaphore | None = None
        self._in_flight = 0
        self._busy_since = 0.0

    async def generate(
        self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None
    ) -> tuple[Texts, GenerationStats]:
        if not prompts:
            return [], GenerationStats()
        loop = asyncio.get_running_loop()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrent_calls)
        pending = _Pending(list(prompts), sampling, adapter, loop.create_future())
        self.stats.requests += 1
        key = pending.key
        queue = self._queues.setdefault(key, [])
        queue.append(pending)
        full = self._full.setdefault(key, asyncio.Event())
        if sum(len(p.prompts) for p in queue) >= self.max_prompts:
            full.set()
        if key not in self._servers:
            self._servers[key] = loop.create_task(self._serve(key))
        return await pending.future

    async def _serve(self, key: GroupKey) -> None:
        """One group's task: wait out the window, take a call slot, send the batch, repeat while
        requests wait; then end (a new request starts it again)."""
        assert self._slots is not None
        try:
            while self._queues.get(key):
                remaining = self._queues[key][0].arrived + self.window_s - time.monotonic()
                if remaining > 0 and not self._full[key].is_set():
                    try:
                        await asyncio.wait_for(self._full[key].wait(), remaining)
                    except asyncio.TimeoutError:
                        pass
                await self._slots.acquire()
                members = self._take(key)
                if not members:
                    self._slots.release()
                    continue
                call = asyncio.get_running_loop().create_task(self._run_group(members))
                self._calls.add(call)
                call.add_done_callback(self._call_done)
        finally:
            # No await between the loop's last test and here: a request queued later finds no
            # server and starts one.
            del self._servers[key]
            if not self._queues.get(key):
                self._queues.pop(key, None)
                self._full.pop(key, None)

    def _call_done(self, call: asyncio.Task) -> None:
        self._calls.discard(call)
        assert self._slots is not None
        self._slots.release()

    def _take(self, key: GroupKey) -> list[_Pending]:
        """The oldest waiting requests of the group, up to `max_prompts` prompts (at least one request)."""
        queue = self._queues[key]
        members: list[_Pending] = []
        count = 0
        while queue and (not members or count + len(queue[0].prompts) <= self.max_prompts):
            p = queue.pop(0)
            if p.future.done():  # its caller gave up (cancelled): nothing to generate
                continue
            members.append(p)
            count += len(p.prompts)
        if sum(len(p.prompts) for p in queue) < self.max_prompts:
            self._full[key].clear()
        return members

    async def _run_group(self, members: list[_Pending]) -> None:
        prompts = [q for p in members for q in p.prompts]
        self._enter()
        started = time.perf_counter()
        try:
            texts, stats = await self.llm.agenerate_with_stats(prompts, members[0].sampling, members[0].adapter)
        except Exception as err:  # every caller of the failed call learns why
            for p in members:
                if not p.future.done():
                    p.future.set_exception(err)
            return
        except BaseException:  # cancelled (the loop is shutting down): so are the callers
            for p in members:
                p.future.cancel()
            raise
        finally:
            self.stats.call_s += time.perf_counter() - started
            self._exit()
        self.stats.backend_calls += 1
        self.stats.prompts += len(prompts)
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

    def _enter(self) -> None:
        if self._in_flight == 0:
            self._busy_since = time.perf_counter()
        self._in_flight += 1

    def _exit(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self.stats.busy_s += time.perf_counter() - self._busy_since
