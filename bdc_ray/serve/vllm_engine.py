"""The vLLM engine of a replica (`serve.engine: vllm`): vLLM generates, each request with its own folded adapter.

Per `generate` call: the waiting groups of jobs (what serve.batch hands over), up to
`max_rows` rows; each job's problem routed by the hypernetwork, its weights quantised and
leased from the adapter cache (folded on a miss: vllm_routing.py), then ONE `LLM.generate` over
every row with a `LoRARequest` per row, vLLM batching them itself. Groups that arrive during a
call wait for the next one: the offline engine is not re-entrant and batches within a call.

The vLLM objects come from the factories passed in (the `vllm.LLM` instance, `SamplingParams`,
`LoRARequest`), so tests run this engine over a stand-in; `load_vllm_engine` makes the real ones.
Not served, refused with a 400 naming the field (EngineBase.check_options): streamed text (the
offline `generate` returns whole samples) and logprobs. A /solve stream still reports each
candidate and verdict as it comes. A client that goes away does not stop rows in a call already
running (the offline engine has no abort); a job cancelled before its call is skipped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from bdc_ray.customize import Completion, Router
from bdc_ray.llm.base import context_length
from bdc_ray.serve.config import ServeConfig
from bdc_ray.serve.engine import BatchStats, EngineBase, GenJob, Group, JobEvent
from bdc_ray.serve.stage import ServeSetupError
from bdc_ray.serve.vllm_routing import AdapterCache, build_requests, completion_of, llm_kwargs, quantise

CANCELLED = Completion("", 0, "cancelled")


class VLLMEngine(EngineBase):
    name = "vllm"
    thread_name = "bdc-vllm"
    streams = False
    reports_logprobs = False

    def __init__(self, router: Router, llm: Any, tokenizer, cache: AdapterCache, *,
                 sampling_params: Callable[..., Any], lora_request: Callable[..., Any], quant_step: float,
                 max_rows: int = 16, context: int | None = None, on_group: Callable[[int], None] | None = None) -> None:
        super().__init__(router, tokenizer, context)  # its own: only the engine uses it
        self.llm = llm
        self.cache = cache
        self.quant_step = quant_step
        self.max_rows = max_rows
        self._sampling_params = sampling_params
        self._lora_request = lora_request
        self._on_group = on_group
        self.stats = BatchStats()
        self._generate_calls = 0
        self._generate_seconds = 0.0
        self._stats_lock = threading.Lock()

    def _take(self) -> list[Group]:
        """The waiting groups of the next call, in arrival order: at least one, at most max_rows rows."""
        groups: list[Group] = []
        rows = 0
        while self._pending and (not groups or rows + self._pending[0].left <= self.max_rows):
            groups.append(self._pending.popleft())
            rows += groups[-1].left
        return groups

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                groups = self._take()
            for group in groups:
                with self._stats_lock:
                    self.stats.record_group(len(group.jobs), group.left)
                if self._on_group is not None:
                    self._on_group(group.left)
            try:
                samples = self._call([job for group in groups for job in group.jobs])
            except Exception as err:  # noqa: BLE001 - the call's groups fail, the engine goes on
                for group in groups:
                    group.on_done(err)
                continue
            for group in groups:
                mine, samples = samples[: len(group.jobs)], samples[len(group.jobs) :]
                group.on_events([(j, event) for j, events in enumerate(mine) for event in events])
                group.on_done(None)

    def _call(self, jobs: list[GenJob]) -> list[list[JobEvent]]:
        """Every row of `jobs` in one `generate` call: per job, its rows' finished samples."""
        events: list[list[JobEvent]] = [[] for _ in jobs]
        live = []
        for j, job in enumerate(jobs):
            if not job.cancel.is_set():
                live.append(j)
                continue
            events[j] = [JobEvent(s, "", done=CANCELLED) for s in range(job.first_sample, job.first_sample + job.rows)]
            with self._stats_lock:
                self.stats.cancelled_rows += job.rows
        if not live:
            return events
        chosen = [jobs[j] for j in live]
        weights = self.router.weights([job.routing_text for job in chosen])
        prompt_ids = [self.encode(job.prompt, job.specials) for job in chosen]
        with self.cache.lease([quantise(w, self.quant_step) for w in weights]) as adapters:
            requests = build_requests(chosen, prompt_ids, adapters)
            start = time.perf_counter()
            outputs = self.llm.generate(
                [r.prompt for r in requests], [self._sampling_params(**r.sampling) for r in requests],
                lora_request=[self._lora_request(*r.lora) for r in requests], use_tqdm=False,
            )
        with self._stats_lock:
            self._generate_calls += 1
            self._generate_seconds += time.perf_counter() - start
        if len(outputs) != len(requests):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(requests)} requests")
        for request, output in zip(requests, outputs):
            done = completion_of(output, chosen[request.job].sampling.stop)
            events[live[request.job]].append(JobEvent(request.sample, done.text, done=done))
        return events

    def stats_snapshot(self) -> dict[str, Any]:
        with self._stats_lock:
            s = self.stats
            return {"jobs": s.jobs, "calls": s.calls, "rows": s.rows, "max_rows": s.max_rows,
                    "rows_histogram": dict(sorted(s.rows_histogram.items())), "generate_calls": self._generate_calls,
                    "generate_seconds": round(self._generate_seconds, 3), "waiting_groups": len(self._pending),
                    "cancelled_rows": s.cancelled_rows, "adapters": self.cache.snapshot()}


def load_vllm_engine(hypernet: str, base_model: str | None, expert_paths: list[str] | None, settings: ServeConfig,
                     on_group: Callable[[int], None] | None = None, vllm_api: tuple[Any, Any] | None = None) -> VLLMEngine:
    """vLLM over the base, the experts' stacked matrices and the hypernetwork (routing on
    `settings.device`). `vllm_api` is (the vllm module, LoRARequest): a stand-in in tests, else
    imported first, so that without vLLM this fails at once, saying how to install it, before the
    hypernetwork, the experts or a model is loaded."""
    import tempfile
    from pathlib import Path

    import torch
    from transformers import AutoConfig, AutoTokenizer

    from bdc_ray.customize import load_expert_stack, load_router, local_copy, materialize
    from bdc_ray.llm.vllm_backend import import_vllm
    from bdc_ray.training import worker_device

    try:
        vllm, lora_request = vllm_api or import_vllm()
    except ImportError as err:  # the hint is the whole story: no ImportError chain under it
        raise ServeSetupError(f"serve.engine is 'vllm', but this replica cannot import vLLM: {err}") from None
    section = settings.vllm
    router = load_router(hypernet, device=worker_device(settings.device))
    experts = load_expert_stack(expert_paths or [e.path for e in router.meta.experts], router.expert_names)
    base = local_copy(base_model or router.meta.base_model)
    if section.adapter_dir:
        Path(section.adapter_dir).mkdir(parents=True, exist_ok=True)
    dtype = getattr(torch, section.adapter_dtype)
    cache = AdapterCache(tempfile.mkdtemp(prefix="bdc-adapters-", dir=section.adapter_dir),
                         section.max_adapters_on_disk,
                         lambda weights, folder: materialize(experts, router.module_names, weights, folder, dtype))
    context = section.engine_args.get("max_model_len") or context_length(AutoConfig.from_pretrained(base))
    llm = vllm.LLM(**llm_kwargs(base, experts.entries, section))
    return VLLMEngine(router, llm, AutoTokenizer.from_pretrained(base), cache, sampling_params=vllm.SamplingParams,
                      lora_request=lora_request, quant_step=section.quant_step,
                      max_rows=settings.batching.max_batch_size, context=context, on_group=on_group)
