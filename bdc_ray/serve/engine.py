"""Requests to forward passes: the pure core between the HTTP layer and the customized solver.

A request becomes one `GenJob` per prompt. A batch of jobs (what serve.batch hands over) is
grouped by sampling settings, and each group is ONE `CustomizedSolver.complete_prompts` call:
every row carries its own problem's routing weights through the same forward passes, so
different problems never wait for each other. Rows are prompts x samples; a greedy job is one
row whatever its `n` (greedy samples are identical), a sampled job is `n` rows of the same
prompt, so jobs with different `n` still share a pass. No Ray here: tests drive it directly.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from bdc_ray.customize import Completion, CustomizedSolver
from bdc_ray.llm.base import SamplingParams
from bdc_ray.problems.prompt_format import SOLUTION_HEADER, TASK_HEADER, prompt_text
from bdc_ray.serve.api import APIError, ExpertWeight, RoutingResponse

_SEEDED = itertools.count()


@dataclass(frozen=True)
class GenJob:
    """One prompt's samples, all decoded with the same settings.

    `sampling.n` is always 1: the job's own `n` says how many samples it wants, so jobs that
    differ only in n group together. A seeded job gets a group of its own, so that its samples
    depend on its seed and not on what else arrived in the same batch.
    """

    prompt: str
    routing_text: str
    n: int
    sampling: SamplingParams
    solo: int | None = None

    @classmethod
    def make(cls, prompt: str, routing_text: str, n: int, sampling: SamplingParams) -> GenJob:
        sampling = sampling.model_copy(update={"n": 1})
        return cls(prompt, routing_text, n, sampling, next(_SEEDED) if sampling.seed is not None else None)

    @classmethod
    def for_problem(cls, problem: str, n: int, sampling: SamplingParams) -> GenJob:
        """A problem statement, prompted in the format the experts and the hypernetwork were trained on."""
        return cls.make(prompt_text(problem), problem, n, sampling)

    @property
    def rows(self) -> int:
        return 1 if self.sampling.greedy else self.n

    @property
    def group(self) -> tuple[str, int | None]:
        return self.sampling.model_dump_json(), self.solo

    def split(self, max_rows: int) -> list[GenJob]:
        """Jobs of at most `max_rows` rows with the same samples in total (a batch must fit one job)."""
        if self.rows <= max_rows:
            return [self]
        sizes = [max_rows] * (self.n // max_rows) + ([self.n % max_rows] if self.n % max_rows else [])
        return [replace(self, n=size) for size in sizes]


def job_rows(jobs: list[GenJob]) -> int:
    """Rows of a batch (serve.batch's batch_size_fn)."""
    return sum(job.rows for job in jobs)


@dataclass(frozen=True)
class GenOutput:
    completions: list[Completion]
    prompt_tokens: int

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.completions]

    @property
    def finish_reasons(self) -> list[str]:
        return [c.finish_reason for c in self.completions]

    @property
    def completion_tokens(self) -> int:
        """Tokens the model produced for the samples (as it generated them, not re-tokenized text)."""
        return sum(c.tokens for c in self.completions)


@dataclass
class BatchStats:
    """Forward-pass groups run by this engine: how many, and how full (reported by /healthz)."""

    jobs: int = 0
    calls: int = 0
    rows: int = 0
    max_rows: int = 0
    rows_histogram: dict[int, int] = field(default_factory=dict)

    def record(self, jobs: int, rows: int) -> None:
        self.jobs += jobs
        self.calls += 1
        self.rows += rows
        self.max_rows = max(self.max_rows, rows)
        self.rows_histogram[rows] = self.rows_histogram.get(rows, 0) + 1


def routing_text_of(prompt: str) -> str:
    """The problem statement inside a prompt in the training format ('### Task\\n...\\n### Solution\\n'),
    else the whole prompt: the hypernetwork was trained on statements, not on prompts."""
    if prompt.startswith(TASK_HEADER):
        end = prompt.find("\n" + SOLUTION_HEADER, len(TASK_HEADER))
        if end != -1:
            return prompt[len(TASK_HEADER) : end]
    return prompt


class Engine:
    """The solver behind a replica. `run` blocks (a model forward); callers move it off the event loop."""

    def __init__(self, solver: CustomizedSolver, on_group: Callable[[int], None] | None = None) -> None:
        self.solver = solver
        self.stats = BatchStats()
        self._on_group = on_group
        self._stats_lock = threading.Lock()
        # One solver call at a time: routing embeds with a tokenizer that two threads must not share,
        # and the composed model's routing weights are state of the one shared model.
        self._solver_lock = threading.Lock()
        # A private tokenizer for counting: the solver's is in use by generate on another thread,
        # and a fast tokenizer must not be entered by two threads at once.
        self._tokenizer = copy.deepcopy(solver.tokenizer)
        self._tokenizer_lock = threading.Lock()
        config = solver.composed.model.config
        limit = getattr(config, "max_position_embeddings", None)
        self.context: int | None = limit if isinstance(limit, int) and limit > 0 else None
        """Longest sequence the model takes (prompt + new tokens); None when the config does not say."""

    @property
    def expert_names(self) -> list[str]:
        return self.solver.expert_names

    def run(self, jobs: list[GenJob]) -> list[GenOutput]:
        """Every job's samples; one solver call (one batched forward per token) per sampling group."""
        groups: dict[tuple[str, int | None], list[int]] = defaultdict(list)
        for i, job in enumerate(jobs):
            groups[job.group].append(i)
        outputs: list[GenOutput | None] = [None] * len(jobs)
        for members in groups.values():
            prompts: list[str] = []
            routes: list[str] = []
            for i in members:
                prompts += [jobs[i].prompt] * jobs[i].rows
                routes += [jobs[i].routing_text] * jobs[i].rows
            with self._solver_lock:
                completions, _ = self.solver.complete_prompts(prompts, routes, jobs[members[0]].sampling)
            with self._stats_lock:
                self.stats.record(len(members), len(prompts))
            if self._on_group is not None:
                self._on_group(len(prompts))
            offset = 0
            for i in members:
                job = jobs[i]
                mine = [c for per_row in completions[offset : offset + job.rows] for c in per_row]
                offset += job.rows
                samples = mine * job.n if job.sampling.greedy else mine
                outputs[i] = GenOutput(samples, prompt_tokens=self.count_tokens(job.prompt, True))
        return outputs  # type: ignore[return-value]

    def room(self, prompt: str) -> int | None:
        """New tokens that fit after `prompt` in the model's context (None: no known limit)."""
        return None if self.context is None else self.context - self.count_tokens(prompt, True)

    def check_fits(self, prompt: str, max_tokens: int) -> None:
        """A prompt that cannot fit the model's context is the client's error (400), found before it
        joins a batch, where a failing forward would fail every request batched with it."""
        if self.context is None:
            return
        tokens = self.count_tokens(prompt, True)
        if tokens + max_tokens > self.context:
            raise APIError(
                400,
                f"the prompt is {tokens} tokens and max_tokens is {max_tokens}: {tokens + max_tokens} exceeds the "
                f"model's context of {self.context} tokens",
                param="max_tokens" if tokens < self.context else "prompt",
            )

    def count_tokens(self, text: str, specials: bool = False) -> int:
        """Tokens of `text` (a prompt's usage figure and context check)."""
        with self._tokenizer_lock:
            return len(self._tokenizer(text, add_special_tokens=specials)["input_ids"])

    def routing(self, problems: list[str]) -> list[RoutingResponse]:
        """Each problem's expert shares, overall and per adapted module (for inspection)."""
        with self._solver_lock:
            weights = self.solver.routing(problems)
        n_experts = len(self.expert_names)
        per_module = weights.view(weights.shape[0], weights.shape[1], n_experts, -1).sum(-1)
        per_module = per_module / per_module.sum(-1, keepdim=True).clamp_min(1e-12)
        overall = per_module.mean(1)
        names = self.solver.composed.module_names
        return [
            RoutingResponse(
                problem_chars=len(problem),
                experts=[ExpertWeight(name=n, weight=float(w)) for n, w in zip(self.expert_names, overall[b])],
                per_module={m: _floats(per_module[b, j]) for j, m in enumerate(names)},
            )
            for b, problem in enumerate(problems)
        ]

    def stats_snapshot(self) -> dict[str, Any]:
        with self._stats_lock:
            s = self.stats
            return {"jobs": s.jobs, "calls": s.calls, "rows": s.rows, "max_rows": s.max_rows,
                    "rows_histogram": dict(sorted(s.rows_histogram.items()))}


def _floats(t: torch.Tensor) -> list[float]:
    return [float(x) for x in t]
