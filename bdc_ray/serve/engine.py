"""Requests to forward passes: the pure core between the HTTP layer and the customized solver.

A request becomes one `GenJob` per prompt. A group of jobs (what serve.batch hands over) joins
the engine's ONE running decode (decode.py `RunningBatch`) with one prefill forward, possibly
while other groups are decoding: every row of every group, whatever its settings, goes through
the same per-step forward passes with its own problem's routing weights, and leaves the batch
when it ends or its client goes away, making room for rows that wait. The decode runs on one
thread of its own, the only one that touches the model; each step's new text reaches the
caller as it is decoded (`submit`, `astream`; `output` assembles a job's samples). Rows are prompts x
samples; a greedy job is one row whatever its `n` (greedy samples are identical), a sampled job
is `n` rows of the same prompt. No Ray here: tests drive it directly.

`EngineBase` is what the app asks of any engine besides generation (token counts, the context
check, chat prompts, a job's output, routing summaries, which request options it serves); this
engine and the vLLM one (vllm_engine.py) derive from it.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from bdc_ray.customize import Completion, CustomizedSolver, Router, TokenLogprob
from bdc_ray.llm.base import SamplingParams, context_length
from bdc_ray.problems.prompt_format import SOLUTION_HEADER, TASK_HEADER, prompt_text
from bdc_ray.serve.api import APIError, ChatMessage, ExpertWeight, RoutingResponse
from bdc_ray.serve.chat import chat_prompt
from bdc_ray.serve.decode import Cancel, DecodeStats, Decoder, RowSpec, RowUpdate

RECENT_CANCELLED = 32


@dataclass(frozen=True)
class GenJob:
    """One prompt's samples, all decoded with the same settings.

    `sampling.n` is always 1: the job's own `n` says how many samples it wants. `first_sample`
    numbers the samples of a part of a larger job (`split`), so that seeds and choice indices stay
    those of the whole job. `cancel` is set when the client goes away: its rows leave the batch.
    """

    prompt: str
    routing_text: str
    n: int
    sampling: SamplingParams
    specials: bool = True
    """Whether the tokenizer adds its special tokens (BOS) to the prompt: not to a rendered chat
    template, which carries its own."""
    logprobs: int | None = None
    first_sample: int = 0
    request_id: str = ""
    cancel: Cancel = field(default_factory=Cancel, compare=False)

    @classmethod
    def make(cls, prompt: str, routing_text: str, n: int, sampling: SamplingParams, **options: Any) -> GenJob:
        return cls(prompt, routing_text, n, sampling.model_copy(update={"n": 1}), **options)

    @classmethod
    def for_problem(cls, problem: str, n: int, sampling: SamplingParams, **options: Any) -> GenJob:
        """A problem statement, prompted in the format the experts and the hypernetwork were trained on."""
        return cls.make(prompt_text(problem), problem, n, sampling, **options)

    @property
    def rows(self) -> int:
        return 1 if self.sampling.greedy else self.n

    def split(self, max_rows: int) -> list[GenJob]:
        """Jobs of at most `max_rows` rows with the same samples in total (a batch must fit one job)."""
        if self.rows <= max_rows:
            return [self]
        sizes = [max_rows] * (self.n // max_rows) + ([self.n % max_rows] if self.n % max_rows else [])
        starts = [self.first_sample + sum(sizes[:i]) for i in range(len(sizes))]
        return [replace(self, n=size, first_sample=start) for size, start in zip(sizes, starts)]

    def choices(self, sample: int) -> range:
        """The job's samples that a decoded row stands for: all n of a greedy job, else itself."""
        return range(self.first_sample, self.first_sample + self.n) if self.sampling.greedy else range(sample, sample + 1)

    def row_seed(self, sample: int) -> int | None:
        """Sample `sample`'s own seed: a function of the request's seed and the sample's index only."""
        seed = self.sampling.seed
        return None if seed is None else (seed * 1_000_003 + sample) % 2**63


def job_rows(jobs: list[GenJob]) -> int:
    """Rows of a batch (serve.batch's batch_size_fn)."""
    return sum(job.rows for job in jobs)


@dataclass(frozen=True)
class JobEvent:
    """What a decode step added to one sample of a job (`sample` counts from the job's first)."""

    sample: int
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()
    done: Completion | None = None


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
    """What this engine decoded: the groups that joined (how many, how large), the steps, and what
    cancelled rows cost (/healthz)."""

    jobs: int = 0
    calls: int = 0
    """Groups admitted (serve.batch batches), one prefill each."""
    rows: int = 0
    max_rows: int = 0
    """Largest group."""
    rows_histogram: dict[int, int] = field(default_factory=dict)
    """Rows per group -> groups."""
    cancelled_rows: int = 0
    tokens_after_cancel: int = 0
    recent_cancelled: deque = field(default_factory=lambda: deque(maxlen=RECENT_CANCELLED))

    def record_group(self, jobs: int, rows: int) -> None:
        self.jobs += jobs
        self.calls += 1
        self.rows += rows
        self.max_rows = max(self.max_rows, rows)
        self.rows_histogram[rows] = self.rows_histogram.get(rows, 0) + 1


@dataclass
class Group:
    """Jobs admitted together, and where their events go."""

    jobs: list[GenJob]
    on_events: Callable[[list[tuple[int, JobEvent]]], None]
    on_done: Callable[[BaseException | None], None]
    left: int = 0
    """Rows not ended yet."""


def routing_text_of(prompt: str) -> str:
    """The problem statement inside a prompt in the training format ('### Task\\n...\\n### Solution\\n'),
    else the whole prompt: the hypernetwork was trained on statements, not on prompts."""
    if prompt.startswith(TASK_HEADER):
        end = prompt.find("\n" + SOLUTION_HEADER, len(TASK_HEADER))
        if end != -1:
            return prompt[len(TASK_HEADER) : end]
    return prompt


_END = object()


class EngineBase(ABC):
    """What the app asks of an engine: `astream` over the engine's own `submit`, and the same
    answers about prompts and routing whatever generates.

    `tokenizer` must be the engine's own copy: a fast tokenizer must not be entered by two threads
    at once, and the one that generates is busy on the generating thread.
    """

    name: str
    """The `serve.engine` value this engine implements (named in its refusals)."""
    thread_name: str
    """The generating thread's name (it is the only thread that touches the model)."""
    streams = True
    """Whether text reaches a request as it is decoded (else `stream: true` is refused)."""
    reports_logprobs = True

    def __init__(self, router: Router, tokenizer, context: int | None) -> None:
        self.router = router
        self._tokenizer = tokenizer
        self._tokenizer_lock = threading.Lock()
        self.context = context
        """Longest sequence the model takes (prompt + new tokens); None when the config does not say."""
        self._pending: deque[Group] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def expert_names(self) -> list[str]:
        return self.router.expert_names

    def check_options(self, stream: bool, logprobs: bool) -> None:
        """Refuse, as the client's 400 naming the field, what this engine does not serve."""
        for asked, served, field_name, what in ((stream, self.streams, "stream", "stream text"),
                                                (logprobs, self.reports_logprobs, "logprobs", "report logprobs")):
            if asked and not served:
                raise APIError(400, f"the {self.name} engine of this server (serve.engine: {self.name}) does not "
                               f"{what}; send the request without {field_name}", param=field_name)

    def submit(self, jobs: list[GenJob], on_events: Callable[[list[tuple[int, JobEvent]]], None],
               on_done: Callable[[BaseException | None], None]) -> None:
        """Queue a group: `on_events` gets (job index, event) pairs as they are produced (the last
        event of each sample carries the finished sample), `on_done` is called once, with the error
        if the group failed. Both are called on the engine's generating thread, started here on
        first use and woken for every group."""
        group = Group(jobs, on_events, on_done, left=sum(job.rows for job in jobs))
        if group.left == 0:
            on_done(None)
            return
        with self._wake:
            self._pending.append(group)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
                self._thread.start()
            self._wake.notify()

    @abstractmethod
    def _loop(self) -> None:
        """The generating thread: takes waiting groups from `_pending` (waiting on `_wake`) forever."""

    @abstractmethod
    def stats_snapshot(self) -> dict[str, Any]:
        """What this engine did so far, for /healthz."""

    async def astream(self, jobs: list[GenJob]) -> AsyncIterator[list[Any]]:
        """The group's events on the event loop, as serve.batch's generator protocol wants them: each
        item has one entry per job, the events since the last item, or StopIteration once the job
        has ended. Events that queued up while the loop was busy come out merged in one item."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def done(err: BaseException | None) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, _END if err is None else err)

        self.submit(jobs, lambda events: loop.call_soon_threadsafe(queue.put_nowait, events), done)
        left = [job.rows for job in jobs]
        ended = [False] * len(jobs)
        finished = False
        try:
            while not finished:
                items = [await queue.get()]
                while not queue.empty():
                    items.append(queue.get_nowait())
                per_job: list[Any] = [StopIteration if e else [] for e in ended]
                for item in items:
                    if item is _END:
                        finished = True
                    elif isinstance(item, BaseException):
                        raise item
                    else:
                        for j, event in item:
                            per_job[j].append(event)
                            left[j] -= event.done is not None
                yield per_job
                ended = [e or n == 0 for e, n in zip(ended, left)]
        finally:
            if not finished:  # abandoned (the caller went away): stop decoding for nobody
                for job in jobs:
                    job.cancel.set()

    def output(self, job: GenJob, finished: dict[int, Completion]) -> GenOutput:
        """A job's samples in order (a greedy row stands for all n), with its prompt's token count."""
        samples = [finished[s] for s in sorted(finished) for _ in job.choices(s)]
        return GenOutput(samples, prompt_tokens=self.count_tokens(job.prompt, job.specials))

    def room(self, prompt: str, specials: bool = True) -> int | None:
        """New tokens that fit after `prompt` in the model's context (None: no known limit)."""
        return None if self.context is None else self.context - self.count_tokens(prompt, specials)

    def check_fits(self, prompt: str, max_tokens: int, specials: bool = True) -> None:
        """A prompt that cannot fit the model's context is the client's error (400), found before it
        joins a batch, where a failing forward would fail every request batched with it."""
        if self.context is None:
            return
        tokens = self.count_tokens(prompt, specials)
        if tokens + max_tokens > self.context:
            raise APIError(
                400,
                f"the prompt is {tokens} tokens and max_tokens is {max_tokens}: {tokens + max_tokens} exceeds the "
                f"model's context of {self.context} tokens",
                param="max_tokens" if tokens < self.context else "prompt",
            )

    def encode(self, text: str, specials: bool = False) -> list[int]:
        """The token ids of `text`, with the tokenizer's special tokens (BOS) when `specials`."""
        with self._tokenizer_lock:
            return self._tokenizer(text, add_special_tokens=specials)["input_ids"]

    def count_tokens(self, text: str, specials: bool = False) -> int:
        """Tokens of `text` (a prompt's usage figure and context check)."""
        return len(self.encode(text, specials))

    def render_chat(self, messages: list[ChatMessage]) -> tuple[str, bool]:
        """The prompt of a conversation (chat.py) and whether the tokenizer adds special tokens to it."""
        with self._tokenizer_lock:
            return chat_prompt(messages, self._tokenizer)

    def routing(self, problems: list[str]) -> list[RoutingResponse]:
        """Each problem's expert shares, overall and per adapted module (for inspection)."""
        weights = self.router.weights(problems)  # the router's own lock guards its embedder
        n_experts = len(self.expert_names)
        per_module = weights.view(weights.shape[0], weights.shape[1], n_experts, -1).sum(-1)
        per_module = per_module / per_module.sum(-1, keepdim=True).clamp_min(1e-12)
        overall = per_module.mean(1)
        names = self.router.module_names
        return [
            RoutingResponse(
                problem_chars=len(problem),
                experts=[ExpertWeight(name=n, weight=float(w)) for n, w in zip(self.expert_names, overall[b])],
                per_module={m: _floats(per_module[b, j]) for j, m in enumerate(names)},
            )
            for b, problem in enumerate(problems)
        ]


class Engine(EngineBase):
    """The solver behind a replica, with its decode thread.

    `max_rows` bounds the running batch (rows in one forward); groups wait, first come first
    served, until there is room. `join=False` decodes one group at a time, each to its end (the
    unbatched baseline). A model whose cache cannot be merged (sliding-window layers) decodes a
    group at a time whatever `join` says.
    """

    name = "transformers"
    thread_name = "bdc-decode"

    def __init__(self, solver: CustomizedSolver, on_group: Callable[[int], None] | None = None, *,
                 max_rows: int = 16, join: bool = True) -> None:
        # Its own tokenizer for counting and chat templates: the solver's is the decode thread's.
        super().__init__(solver.router, copy.deepcopy(solver.tokenizer), context_length(solver.composed.model.config))
        self.solver = solver
        self.max_rows = max_rows
        self.join = join
        self.stats = BatchStats()
        self._on_group = on_group
        self._stats_lock = threading.Lock()
        self.decoder = Decoder(solver.composed, solver.tokenizer, solver.stop_ids)
        self._decoded = DecodeStats()
        self._batch = self.decoder.batch(self._decoded)
        self._owners: dict[int, tuple[Group, int, int]] = {}
        """Row id -> (its group, job index in the group, sample)."""
        self._row_ids = itertools.count()
        self._seen_cancelled = 0
    # -- the decode thread ------------------------------------------------------------------

    def _next_groups(self) -> list[Group]:
        """Waiting groups that fit now, in arrival order (a group never overtakes an earlier one)."""
        if self._batch and not (self.join and self._batch.joinable):
            return []
        rows = len(self._batch)
        admitted: list[Group] = []
        while self._pending and (rows == 0 or rows + self._pending[0].left <= self.max_rows):
            admitted.append(self._pending.popleft())
            rows += admitted[-1].left
            if not self.join:
                break
        return admitted

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._batch:
                    self._wake.wait()
                admitted = self._next_groups()
            for group in admitted:
                self._admit(group)
            if self._batch:
                try:
                    self._batch.step(self._dispatch)
                except Exception as err:  # noqa: BLE001 - every group in the batch fails, the engine goes on
                    self._fail_batch(err)

    def _admit(self, group: Group) -> None:
        jobs = group.jobs
        try:
            prompt_ids = [self.solver.tokenizer(job.prompt, add_special_tokens=job.specials)["input_ids"] for job in jobs]
            per_job = self.solver.routing([job.routing_text for job in jobs])
            owners = [(j, job.first_sample + s) for j, job in enumerate(jobs) for s in range(job.rows)]
            weights = per_job[torch.tensor([j for j, _ in owners], device=per_job.device)]
            specs = [RowSpec(prompt_ids[j], jobs[j].sampling.max_new_tokens, jobs[j].sampling.temperature,
                             jobs[j].sampling.top_p, tuple(jobs[j].sampling.stop), jobs[j].row_seed(sample),
                             jobs[j].logprobs, jobs[j].cancel)
                     for j, sample in owners]
            ids = [next(self._row_ids) for _ in owners]
            for row_id, (j, sample) in zip(ids, owners):
                self._owners[row_id] = (group, j, sample)
            with self._stats_lock:
                self.stats.record_group(len(jobs), len(specs))
            if self._on_group is not None:
                self._on_group(len(specs))
            early = self._batch.join(ids, specs, weights)
        except Exception as err:  # noqa: BLE001 - this group fails, the running batch goes on
            for row_id in [r for r, (g, _, _) in self._owners.items() if g is group]:
                del self._owners[row_id]
            group.on_done(err)
            return
        if early:
            self._dispatch(early)

    def _dispatch(self, updates: list[RowUpdate]) -> None:
        self._record_cancelled()  # before anyone hears that the rows ended
        by_group: dict[int, tuple[Group, list[tuple[int, JobEvent]]]] = {}
        for u in updates:
            group, j, sample = self._owners[u.row]
            by_group.setdefault(id(group), (group, []))[1].append((j, JobEvent(sample, u.text, u.logprobs, u.done)))
            if u.done is not None:
                group.left -= 1
        for group, events in by_group.values():
            group.on_events(events)
            if group.left == 0:
                group.on_done(None)
        for u in updates:
            if u.done is not None:
                del self._owners[u.row]

    def _record_cancelled(self) -> None:
        fresh = self._decoded.cancelled[self._seen_cancelled :]
        if not fresh:
            return
        self._seen_cancelled = len(self._decoded.cancelled)
        going_on = sum(1 for r in self._batch.rows if r.spec.cancel is None or not r.spec.cancel.is_set())
        with self._stats_lock:
            for c in fresh:
                group, job, sample = self._owners[c.row]
                self.stats.cancelled_rows += 1
                self.stats.tokens_after_cancel += c.tokens_after_cancel
                self.stats.recent_cancelled.append({
                    "request": group.jobs[job].request_id, "sample": sample, "tokens": c.tokens,
                    "tokens_after_cancel": c.tokens_after_cancel, "group_rows": sum(j.rows for j in group.jobs),
                    "others_running": going_on,
                })

    def _fail_batch(self, err: BaseException) -> None:
        groups = {id(g): g for g, _, _ in self._owners.values()}
        self._owners.clear()
        self._batch = self.decoder.batch(self._decoded)
        self._seen_cancelled = len(self._decoded.cancelled)
        for group in groups.values():
            group.on_done(err)

    def stats_snapshot(self) -> dict[str, Any]:
        with self._stats_lock:
            s, d = self.stats, self._decoded
            return {"jobs": s.jobs, "calls": s.calls, "rows": s.rows, "max_rows": s.max_rows,
                    "rows_histogram": dict(sorted(s.rows_histogram.items())), "steps": d.steps,
                    "row_steps": d.row_steps, "max_running": d.max_running, "joined_running": d.joined_running,
                    "running": len(self._batch), "waiting_groups": len(self._pending),
                    "cancelled_rows": s.cancelled_rows, "tokens_after_cancel": s.tokens_after_cancel,
                    "recent_cancelled": list(s.recent_cancelled)}


def _floats(t: torch.Tensor) -> list[float]:
    return [float(x) for x in t]
