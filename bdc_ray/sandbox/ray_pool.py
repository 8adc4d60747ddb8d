"""The Ray shell of the sandbox: one sandbox actor per node, fed in chunks.

Each actor owns a warm `Sandbox` (its own pre-forked, namespaced workers) on its node, so
evaluation and tree search spread program runs over the whole cluster. Actors restart on
failure and chunks are retried, so a lost node costs only a re-run of its in-flight chunk.

Two ways in: `run_many` (a batch, in chunks: scoring) and `arun` (one program, awaited: the tree
search keeps hundreds in flight on one event loop). `make_pool` builds the pool a config asks for.

The pool starts in the background (the first runs wait for it; until then the caller carries on:
Boost's first generations, eval's solver tasks); its start-up, from creation to the last actor's
warm workers, is recorded as a phase of the calling stage when the pool shuts down.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any, Sequence

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tqdm.auto import tqdm

from bdc_ray.metrics import add
from bdc_ray.timing import record
from bdc_ray.problems.types import Test
from bdc_ray.sandbox import RunResult, Sandbox, SandboxLimits
from bdc_ray.sandbox.section import SandboxSection

log = logging.getLogger(__name__)

STARTED_PHASE = "sandbox pool started, warm workers ready"
WAITED_PHASE = "sandbox pool: what its first run waited of that"
STOPPED_PHASE = "sandbox pool stopped"


@ray.remote(max_restarts=-1, max_task_retries=3)
class SandboxActor:
    """Holds a warm sandbox pool; threaded so several chunks use its workers at once."""

    def __init__(self, workers: int, limits: dict[str, Any]):
        from bdc_ray.metrics import sandbox_metrics

        self._sandbox = Sandbox(workers=workers, limits=SandboxLimits.model_validate(limits))
        self._runs = sandbox_metrics()["runs"]
        self._ready_at = time.time()

    def run_many(self, jobs: list[tuple[str, list[Test]]], limits: dict[str, Any] | None = None) -> list[RunResult]:
        override = SandboxLimits.model_validate(limits) if limits else None
        results = self._sandbox.run_many(jobs, limits=override)
        for r in results:
            add(self._runs, 1, {"status": r.status})
        return results

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def shutdown(self) -> float:
        """Close the warm workers; returns when they had all been up (wall clock of this node)."""
        self._sandbox.close()
        return self._ready_at


class SandboxPool:
    """Sandbox actors spread over the cluster's nodes (one per node unless `actors` is set)."""

    def __init__(
        self,
        workers_per_actor: int,
        limits: SandboxLimits,
        actors: int | None = None,
        ray_options: dict[str, Any] | None = None,
    ):
        nodes = alive_nodes()
        count = actors or len(nodes)
        # Threaded actor: enough concurrent calls to keep every warm worker busy.
        options = {"max_concurrency": max(4, workers_per_actor * 4), **(ray_options or {})}
        self.workers_per_actor = workers_per_actor
        self.limits = limits
        self._turn = itertools.count()
        self._created_at = time.time()
        self._first_use: float | None = None
        self.actors = [
            SandboxActor.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(nodes[i % len(nodes)], soft=True), **options
            ).remote(workers_per_actor, limits.model_dump())
            for i in range(count)
        ]

    def run_many(
        self,
        jobs: Sequence[tuple[str, list[Test]]],
        limits: SandboxLimits | None = None,
        chunk_size: int | None = None,
        desc: str | None = "sandbox runs",
    ) -> list[RunResult]:
        """Run every job somewhere in the cluster; results come back in the jobs' order."""
        self._first_use = self._first_use or time.time()
        size = chunk_size or max(1, self.workers_per_actor * 2)
        chunks = [list(jobs[i : i + size]) for i in range(0, len(jobs), size)]
        limits_dump = limits.model_dump() if limits else None
        results: list[list[RunResult] | None] = [None] * len(chunks)
        pending: dict[ray.ObjectRef, int] = {}
        next_chunk = 0
        in_flight_per_actor = 2
        bar = tqdm(total=len(jobs), desc=desc, unit="run", disable=desc is None)
        while next_chunk < len(chunks) or pending:
            while next_chunk < len(chunks) and len(pending) < in_flight_per_actor * len(self.actors):
                actor = self.actors[next_chunk % len(self.actors)]
                pending[actor.run_many.remote(chunks[next_chunk], limits_dump)] = next_chunk
                next_chunk += 1
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                results[index] = ray.get(ref)
                bar.update(len(chunks[index]))
        bar.close()
        return [r for chunk in results for r in chunk]  # type: ignore[union-attr]

    async def arun(self, program: str, tests: Sequence[Test]) -> RunResult:
        """Run one program on its tests on the next actor in turn (round-robin over the cluster)."""
        self._first_use = self._first_use or time.time()
        actor = self.actors[next(self._turn) % len(self.actors)]
        (result,) = await actor.run_many.remote([(program, list(tests))])
        return result

    def shutdown(self) -> None:
        """Stop every actor. The pool's start-up (creation -> the last actor's warm workers up) is
        recorded now, after the fact, so that nobody waited for it, with the part of it the first
        run waited for (the rest overlapped the caller's own work); an actor on another node reads
        its own clock, which NTP keeps close."""
        ready: list[float] = []
        stopping = time.perf_counter()
        for actor in self.actors:
            try:
                ready.append(ray.get(actor.shutdown.remote(), timeout=30))
            except Exception as err:  # a dead actor has nothing left to close
                log.debug("sandbox actor shutdown: %s", err)
            ray.kill(actor)
        if ready:
            record(STARTED_PHASE, max(ready) - self._created_at)
            if self._first_use is not None:
                record(WAITED_PHASE, max(0.0, max(ready) - self._first_use))
        record(STOPPED_PHASE, time.perf_counter() - stopping)


def alive_nodes() -> list[str]:
    return [n["NodeID"] for n in ray.nodes() if n.get("Alive")]


def pool_actors(section: SandboxSection) -> int:
    """Actors the section's pool starts (one per node unless it says), all of which must be up:
    runs go round-robin to each of them."""
    return section.actors or len(alive_nodes())


def make_pool(section: SandboxSection, ray_options: dict[str, Any] | None = None) -> SandboxPool:
    """The pool of the `sandbox:` section; `ray_options` is what each actor asks Ray for
    (`resources.sandbox` in the config)."""
    return SandboxPool(
        workers_per_actor=section.workers_per_actor,
        limits=section.limits,
        actors=section.actors,
        ray_options=ray_options,
    )
