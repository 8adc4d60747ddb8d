"""What the vLLM engine asks of vLLM, as plain data: routing weights -> adapter folders -> requests.

vLLM loads LoRA adapters; it does not compose them. So each request's routing weights
([M, E*r], one problem) are folded into one rank-E*r adapter folder (customize's `materialize`)
and sent as a `LoRARequest`. A fold costs a folder write, a load into vLLM's CPU cache and a
copy into a GPU slot, so requests whose weights agree share one adapter:

- `quantise` rounds the weights to a grid of step `quant_step`; the ROUNDED weights are what is
  folded, so an adapter depends only on its key, never on which request came first. Each weight
  moves by at most step / 2 (docs/design-choices.md bounds what that does to a layer's output;
  tests/serve/test_vllm_routing.py measures it on a tiny model).
- `AdapterCache` keeps the folders in an LRU bounded on disk, each with an integer id vLLM
  caches it by. Ids count up from 1 and are never reused, and a folder's path carries its id:
  vLLM may still hold an evicted adapter in its CPU cache or a GPU slot, and an id (or a name:
  `LoRARequest` compares by name) reused for other weights would be served from that stale
  copy. Folders leased to a `generate` call in flight are never evicted.
- `build_requests` gives every row (prompt x sample) its tokenized prompt, its job's adapter and
  its own sampling arguments (vllm_backend's `sampling_kwargs`, with the row's own seed).

Nothing here imports vLLM: tests check every decision without it (vllm_engine.py turns the
results into vLLM objects).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import shutil
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bdc_ray.customize import Completion
from bdc_ray.llm.base import truncate_at_stop
from bdc_ray.llm.vllm_backend import engine_kwargs, lora_kwargs, sampling_kwargs
from bdc_ray.serve.config import VLLMSection
from bdc_ray.serve.engine import GenJob


def quantise(weights: torch.Tensor, step: float) -> tuple[str, torch.Tensor]:
    """(cache key, the weights to fold) of one problem's weights [M, E*r].

    step > 0: every weight rounded to the nearest multiple of `step` (each moves by at most
    step / 2), so weights that round alike share a key; step 0: the exact weights, shared only by
    bit-identical routings.
    """
    w = weights.detach().to(device="cpu", dtype=torch.float32).contiguous()
    if step > 0:
        grid = torch.round(w / step).to(torch.int64)
        payload, folded = grid.numpy().tobytes(), grid.to(torch.float32) * step
    else:
        payload, folded = w.numpy().tobytes(), w
    digest = hashlib.sha256(f"{tuple(w.shape)}/{step!r}/".encode() + payload).hexdigest()
    return digest[:32], folded


@dataclass(eq=False)
class Adapter:
    """One folded adapter folder and the id vLLM knows it by."""

    key: str
    lora_id: int
    path: Path
    pins: int = 0
    """Leases in flight: a pinned folder is never evicted."""
    ready: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    @property
    def request_args(self) -> tuple[str, int, str]:
        """`LoRARequest(lora_name, lora_int_id, lora_path)`: the name is unique as the id is."""
        return f"bdc-{self.lora_id}", self.lora_id, str(self.path)


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evicted: int = 0
    write_seconds: float = 0.0


class AdapterCache:
    """Folded adapter folders under `root`, at most `capacity` of them, least recently used evicted.

    Thread-safe. A key asked for by two threads at once is folded once: the second waits for the
    first's folder. `write(weights, folder)` folds (materialize); a write that fails fails every
    lease waiting for it and leaves nothing behind. Leases of more distinct keys than `capacity`
    at once overfill the cache until they end (the config keeps a call's rows within it).
    """

    def __init__(self, root: str | Path, capacity: int, write: Callable[[torch.Tensor, Path], Any]) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.capacity = capacity
        self.stats = CacheStats()
        self._write = write
        self._entries: OrderedDict[str, Adapter] = OrderedDict()
        self._ids = itertools.count(1)  # vLLM refuses id 0
        self._lock = threading.Lock()
        # The folders go with the cache (replica shutdown, interpreter exit).
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.root), True)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @contextlib.contextmanager
    def lease(self, items: Sequence[tuple[str, torch.Tensor]]) -> Iterator[list[Adapter]]:
        """The adapters of (key, folded weights) pairs, folded when missing, pinned inside the block."""
        held: list[Adapter] = []
        try:
            for key, weights in items:
                held.append(self._acquire(key, weights))
            yield held
        finally:
            with self._lock:
                for adapter in held:
                    adapter.pins -= 1
            self._evict()

    def _acquire(self, key: str, weights: torch.Tensor) -> Adapter:
        with self._lock:
            adapter = self._entries.get(key)
            fresh = adapter is None
            if adapter is None:
                lora_id = next(self._ids)
                adapter = Adapter(key, lora_id, self.root / f"{lora_id:06d}-{key[:12]}")
                self._entries[key] = adapter
                self.stats.misses += 1
            else:
                self._entries.move_to_end(key)
                self.stats.hits += 1
            adapter.pins += 1
        if fresh:
            self._fold(adapter, weights)
        else:
            adapter.ready.wait()
        if adapter.error is not None:
            with self._lock:
                adapter.pins -= 1
            raise RuntimeError(f"folding adapter {adapter.key} failed: {adapter.error}") from adapter.error
        if fresh:
            self._evict()
        return adapter

    def _fold(self, adapter: Adapter, weights: torch.Tensor) -> None:
        start = time.perf_counter()
        try:
            self._write(weights, adapter.path)
        except BaseException as err:  # noqa: BLE001 - handed to every waiter, raised by _acquire
            adapter.error = err
            with self._lock:
                if self._entries.get(adapter.key) is adapter:
                    del self._entries[adapter.key]
            shutil.rmtree(adapter.path, ignore_errors=True)
        finally:
            with self._lock:
                self.stats.write_seconds += time.perf_counter() - start
            adapter.ready.set()

    def _evict(self) -> None:
        """Drop the least recently used unpinned folders beyond `capacity` (deleted outside the lock)."""
        with self._lock:
            victims = []
            for key, adapter in list(self._entries.items()):
                if len(self._entries) <= self.capacity:
                    break
                if adapter.pins == 0 and adapter.ready.is_set():
                    del self._entries[key]
                    victims.append(adapter)
            self.stats.evicted += len(victims)
        for adapter in victims:
            shutil.rmtree(adapter.path, ignore_errors=True)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            s = self.stats
            return {"on_disk": len(self._entries), "capacity": self.capacity, "hits": s.hits, "misses": s.misses,
                    "evicted": s.evicted, "write_seconds": round(s.write_seconds, 3)}


@dataclass(frozen=True)
class VLLMRequest:
    """One row (a prompt's sample) as `LLM.generate` takes it, in plain data."""

    job: int
    sample: int
    prompt: dict[str, list[int]]
    """vLLM's TokensPrompt: the tokens the transformers engine would prompt with (BOS as the job says)."""
    lora: tuple[str, int, str]
    """`LoRARequest(*lora)`."""
    sampling: dict[str, Any]
    """`vllm.SamplingParams(**sampling)`."""


def build_requests(jobs: Sequence[GenJob], prompt_ids: Sequence[list[int]], adapters: Sequence[Adapter]) -> list[VLLMRequest]:
    """One request per row: a greedy job is one row whatever its n, a sampled job n rows, each with
    its own seed (GenJob.row_seed), so a seeded sample does not depend on what it was batched with."""
    if not len(jobs) == len(prompt_ids) == len(adapters):
        raise ValueError(f"{len(jobs)} jobs, {len(prompt_ids)} prompts and {len(adapters)} adapters")
    return [
        VLLMRequest(j, sample, {"prompt_token_ids": list(ids)}, adapter.request_args,
                    sampling_kwargs(job.sampling.model_copy(update={"seed": job.row_seed(sample)})))
        for j, (job, ids, adapter) in enumerate(zip(jobs, prompt_ids, adapters))
        for sample in range(job.first_sample, job.first_sample + job.rows)
    ]


def llm_kwargs(base_model: str, entries: int, section: VLLMSection) -> dict[str, Any]:
    """`vllm.LLM(...)` for the customized solver: LoRA of rank E*r (rounded up to a rank vLLM
    allows), the section's GPU slots and CPU cache, then its engine_args."""
    lora = lora_kwargs([entries], section.max_loras, section.max_cpu_loras)
    return engine_kwargs(base_model, lora, section.dtype, section.engine_args)


def completion_of(output: Any, stop: Sequence[str]) -> Completion:
    """A row's sample from vLLM's `RequestOutput` (one CompletionOutput: n is 1 per row)."""
    sample = output.outputs[0]
    reason = "length" if sample.finish_reason == "length" else "stop"
    return Completion(truncate_at_stop(sample.text, list(stop)), len(sample.token_ids), reason)
