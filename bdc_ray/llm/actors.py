"""LLM agents as Ray actors: one model per actor, concurrent callers batched together.

An `LLMActor` is an async actor, so hundreds of tree-search calls can wait on it at once while
the `Batcher` feeds the model full batches. Actors restart when they die (a lost node, an OOM)
and calls are retried, which is what lets a search survive losing the node hosting an agent.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import ray

from bdc_ray.llm.base import GenerationStats, SamplingParams, Texts
from bdc_ray.llm.batcher import Batcher
from bdc_ray.llm.spec import BackendSpec
from bdc_ray.threads import configure_torch_threads
from bdc_ray.metrics import add

log = logging.getLogger(__name__)


@ray.remote(max_restarts=-1, max_task_retries=-1)
class LLMActor:
    def __init__(self, spec: dict[str, Any], window_s: float = 0.01, max_prompts: int = 64):
        from bdc_ray.llm.factory import make_llm
        from bdc_ray.metrics import llm_metrics

        started = time.perf_counter()
        backend = BackendSpec.model_validate(spec)
        if backend.backend == "transformers":
            configure_torch_threads(backend.threads)
        self.name = backend.display_name()
        self.batcher = Batcher(make_llm(backend), window_s=window_s, max_prompts=max_prompts)
        self.metrics = llm_metrics()
        self.load_s = time.perf_counter() - started

    async def generate(
        self, prompts: list[str], sampling: dict[str, Any], adapter: str | None = None
    ) -> tuple[Texts, dict[str, Any]]:
        params = SamplingParams.model_validate(sampling)
        texts, stats = await self.batcher.generate(prompts, params, adapter)
        tags = {"agent": self.name}
        add(self.metrics["calls"], 1, tags)
        add(self.metrics["tokens"], stats.completion_tokens, tags)
        return texts, stats.model_dump()

    def stats(self) -> dict[str, Any]:
        s = self.batcher.stats
        return {
            "requests": s.requests,
            "backend_calls": s.backend_calls,
            "prompts": s.prompts,
            "busy_s": s.busy_s,
            "completion_tokens": s.tokens.completion_tokens,
            "node_id": ray.get_runtime_context().get_node_id(),
        }

    def ready(self) -> str:
        return self.name

    def load_seconds(self) -> float:
        """How long this actor took to import its backend and load its model (its start-up in the process)."""
        return self.load_s


def start_llm_actor(spec: BackendSpec, ray_options: dict[str, Any], window_s: float = 0.01, name: str | None = None):
    """Create the actor with the agent's resources; `name` makes it findable from other drivers."""
    options = dict(ray_options)
    options.setdefault("max_concurrency", 1000)
    if name:
        options.update(name=name, get_if_exists=True)
    return LLMActor.options(**options).remote(spec.model_dump(), window_s)


async def agenerate(actor, prompts: list[str], sampling: SamplingParams, adapter: str | None = None) -> tuple[Texts, GenerationStats]:
    """Call an `LLMActor` from async code with typed arguments and results."""
    texts, stats = await actor.generate.remote(prompts, sampling.model_dump(), adapter)
    return texts, GenerationStats.model_validate(stats)
