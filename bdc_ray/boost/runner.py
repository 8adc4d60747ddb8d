"""The Ray shell of Boost: many problems searched at once by agent actors and sandbox actors.

Parallelism comes from across problems (up to `max_concurrent_problems` searches interleave on
one event loop in the driver) and across agents (every expansion awaits all agents together);
agent actors batch whatever arrives at the same time. Each finished problem is written
atomically to its own trace file, so a re-run skips what is done, a killed driver loses only the
problems in flight, and nothing is written twice.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import ray
from tqdm.auto import tqdm

from bdc_ray import storage
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.artifacts.sft import write_sft_rows
from bdc_ray.artifacts.traces import TraceRecord, finished_ids, read_traces, write_trace
from bdc_ray.boost.agents import LLMAgent
from bdc_ray.boost.config import SearchConfig
from bdc_ray.boost.interfaces import Executor
from bdc_ray.boost.prompts import PromptBook
from bdc_ray.boost.records import preference_rows, sft_rows, trace_record
from bdc_ray.boost.search import MCTreeOfAgents
from bdc_ray.llm.actors import agenerate
from bdc_ray.llm.base import SamplingParams, Texts
from bdc_ray.metrics import add, boost_metrics
from bdc_ray.problems.types import Problem

log = logging.getLogger(__name__)


@dataclass
class AgentHandle:
    """One configured agent: its name, prompt book and the actor replicas serving its model."""

    name: str
    book: PromptBook
    actors: list[Any]
    _turn: itertools.count = field(default_factory=itertools.count)

    async def generate(self, prompts: list[str], sampling: SamplingParams) -> Texts:
        actor = self.actors[next(self._turn) % len(self.actors)]
        texts, _ = await agenerate(actor, prompts, sampling)
        return texts

    def agent(self) -> LLMAgent:
        return LLMAgent(self.name, self.generate, self.book)


@dataclass
class BoostRunner:
    """`executor` runs every program: the sandbox pool (`SandboxPool.arun`), or anything with the
    same `arun` (a benchmark's timed wrapper of it)."""

    agents: list[AgentHandle]
    executor: Executor
    search: SearchConfig
    layout: RunLayout
    max_concurrent_problems: int = 8
    max_attempts: int = 3
    errors: list[dict[str, Any]] = field(default_factory=list)

    def run(self, problems: Sequence[Problem]) -> dict[str, Any]:
        return asyncio.run(self.arun(problems))

    async def arun(self, problems: Sequence[Problem]) -> dict[str, Any]:
        done = finished_ids(self.layout.traces_dir)
        todo = [p for p in problems if p.id not in done]
        log.info("boost: %d problems, %d already finished, %d to search", len(problems), len(done), len(todo))
        searcher = MCTreeOfAgents([a.agent() for a in self.agents], self.executor, self.search)
        metrics = boost_metrics()
        gate = asyncio.Semaphore(self.max_concurrent_problems)
        bar = tqdm(total=len(todo), desc="boost", unit="problem")
        counts = {"solved": 0, "rollouts": 0}
        started = time.perf_counter()

        async def one(problem: Problem) -> None:
            async with gate:
                record = await self._search_with_retries(searcher, problem)
            if record is None:
                return
            write_trace(self.layout.traces_dir, record)
            counts["solved"] += record.hidden_passed_all
            counts["rollouts"] += record.rollouts
            add(metrics["rollouts"], record.rollouts)
            add(metrics["problems"], 1, {"solved": str(record.hidden_passed_all).lower()})
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(solved=counts["solved"], rollouts_s=f"{counts['rollouts'] / elapsed:.2f}")
            bar.update(1)

        await asyncio.gather(*(one(p) for p in todo))
        bar.close()
        return self.export()

    async def _search_with_retries(self, searcher, problem: Problem) -> TraceRecord | None:
        for attempt in range(1, self.max_attempts + 1):
            t0 = time.perf_counter()
            try:
                result = await searcher.search(problem.public_view())
                hidden = await self.executor.arun(result.best_program, problem.hidden_tests) if problem.hidden_tests else None
                return trace_record(problem, result, hidden, time.perf_counter() - t0)
            except (ray.exceptions.RayError, ConnectionError, TimeoutError) as err:
                log.warning("boost: %s attempt %d/%d failed: %s", problem.id, attempt, self.max_attempts, err)
                last = err
        self.errors.append({"problem_id": problem.id, "error": repr(last)})
        storage.write_jsonl_atomic(self.layout.boost_errors, self.errors)
        return None

    def export(self) -> dict[str, Any]:
        return export_traces(self.layout, errors=len(self.errors))


def export_traces(layout: RunLayout, errors: int = 0) -> dict[str, Any]:
    """Rebuild sft.jsonl, preferences.jsonl and summary.json from every trace on storage."""
    records = read_traces(layout.traces_dir)
    n_sft = write_sft_rows(layout.sft_file, sft_rows(records))
    n_pref = storage.write_jsonl_atomic(layout.preferences_file, preference_rows(records))
    summary = summarize_traces(records)
    summary.update(sft_rows=n_sft, preference_pairs=n_pref, errors=errors)
    storage.write_json_atomic(layout.boost_summary, summary)
    return summary


def summarize_traces(records: Sequence[TraceRecord]) -> dict[str, Any]:
    n = len(records)
    gens: dict[str, int] = {}
    runs: dict[str, int] = {}
    best_by: dict[str, int] = {}
    for r in records:
        for k, v in r.llm_generations.items():
            gens[k] = gens.get(k, 0) + v
        for k, v in r.sandbox_runs.items():
            runs[k] = runs.get(k, 0) + v
        if r.hidden_passed_all and r.best_agent:
            best_by[r.best_agent] = best_by.get(r.best_agent, 0) + 1
    mean = lambda key: sum(getattr(r, key) for r in records) / n if n else 0.0  # noqa: E731
    return {
        "problems": n,
        "solved_public": sum(r.solved_public for r in records),
        "solved_hidden": sum(r.hidden_passed_all for r in records),
        # where the answer came from: a plain sample of the root, or a state the tree reached
        "solved_at_root": sum(r.solved_by == "root" for r in records),
        "solved_by_tree": sum(r.solved_by == "tree" for r in records),
        "mean_rollouts": mean("rollouts"),
        "mean_tree_size": mean("tree_size"),
        "mean_tree_depth": mean("tree_depth"),
        "llm_generations": gens,
        "sandbox_runs": runs,
        "solved_by_agent": best_by,
    }
