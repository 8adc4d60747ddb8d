"""Deterministic agents and executor for unit tests of the search logic only.

A "program" here is the text `ops:<op>,<op>...`; the fake executor applies the ops to each
call test's argument. Each agent knows some correct steps and some wrong ones, so what the
tree finds depends on which agents take part: exactly what mutual boosting is about.

`FakeAgent` proposes bare thoughts (the instruct-style paper loop); `ContinuingAgent` samples
whole continuations like a completion-style model (next thought + the program after it);
`SampledAgent` is a continuing agent whose samples are random but fixed by a seed.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from bdc_ray.boost.interfaces import Continuation, Proposal
from bdc_ray.problems.types import CallTest, Problem
from bdc_ray.sandbox import RunResult, TestOutcome

OPS = {"double": lambda x: 2 * x, "add one": lambda x: x + 1, "negate": lambda x: -x, "square": lambda x: x * x}


def problem(steps: Sequence[str] = ("double", "add one"), xs_public=(1, 2, 3), xs_hidden=(10, 20)) -> Problem:
    def f(x):
        for s in steps:
            x = OPS[s](x)
        return x

    return Problem(
        id="fake/1",
        source="fake",
        prompt="compute f(x)",
        public_tests=[CallTest(fn_name="f", args=[x], expected=f(x)) for x in xs_public],
        hidden_tests=[CallTest(fn_name="f", args=[x], expected=f(x)) for x in xs_hidden],
    )


def program_of(thoughts: Sequence[str]) -> str:
    return "ops:" + ",".join(t for t in thoughts if t in OPS)


@dataclass
class InFlight:
    """Agent calls in flight at once, across every agent that shares it."""

    now: int = 0
    peak: int = 0

    async def hold(self, delay_s: float) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(delay_s)
        finally:
            self.now -= 1


@dataclass
class FakeAgent:
    """Proposes its `ideas` in order (skipping ones already in the chain); codes the chain."""

    name: str
    ideas: list[tuple[str, float]]
    refinements: dict[str, str] = field(default_factory=dict)
    merges_to: dict[tuple[str, str], str] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=lambda: {"propose": 0, "write_code": 0, "refine": 0, "merge": 0, "continue_from": 0})
    calls_at: Counter = field(default_factory=Counter)  # (method, thoughts) -> calls
    delay_s: float = 0.0  # > 0: every call sleeps (real asyncio), so concurrent calls overlap
    in_flight: InFlight = field(default_factory=InFlight)
    continues: bool = False
    refines: bool = True
    merges: bool = True

    async def _call(self, method: str, problem, thoughts, *texts) -> None:
        self.calls[method] += 1
        self.calls_at[(method, tuple(thoughts))] += 1
        self.seen.extend(str(t) for t in (problem.model_dump_json(), *thoughts, *texts))
        if self.delay_s:
            await self.in_flight.hold(self.delay_s)

    async def propose(self, problem, thoughts, width):
        await self._call("propose", problem, thoughts)
        fresh = [(t, p) for t, p in self.ideas if t not in thoughts]
        return [Proposal(t, p) for t, p in fresh[:width]]

    async def write_code(self, problem, thoughts, n):
        await self._call("write_code", problem, thoughts)
        return [program_of(thoughts)] * n

    async def continue_from(self, problem, thoughts, n):
        raise AssertionError(f"{self.name} does not continue: the search must not ask it to")

    async def refine(self, problem, thoughts, thought, feedback):
        await self._call("refine", problem, thoughts, thought, feedback)
        better = self.refinements.get(thought)
        return Proposal(better, 0.9) if better else None

    async def merge(self, problem, thoughts, first, second):
        await self._call("merge", problem, thoughts, first, second)
        merged = self.merges_to.get((first, second))
        return Proposal(merged, 0.7) if merged else None


@dataclass
class ContinuingAgent(FakeAgent):
    """A completion-style agent: a sample from a state is its next idea and the chain's program.

    The i-th sample ever drawn at a state takes fresh idea number i in a cycle, so later
    expansions of a state bring other ideas, and a call for fewer samples returns a prefix of
    what a call for more would (as a budget cut short would). `None` in the ideas is a sample
    that goes straight to code. Like the tiny models, it neither refines nor merges.
    """

    continues: bool = True
    refines: bool = False
    merges: bool = False
    drawn_at: Counter = field(default_factory=Counter)  # (method, thoughts) -> samples drawn so far

    def _draw(self, method: str, thoughts, n: int) -> range:
        key = (method, tuple(thoughts))
        first = self.drawn_at[key]
        self.drawn_at[key] += n
        return range(first, first + n)

    async def continue_from(self, problem, thoughts, n):
        numbers = self._draw("continue_from", thoughts, n)
        await self._call("continue_from", problem, thoughts)
        fresh = [t for t, _ in self.ideas if t is None or t not in thoughts]
        if not fresh:
            return [Continuation(None, program_of(thoughts)) for _ in numbers]
        picks = [fresh[i % len(fresh)] for i in numbers]
        return [Continuation(t, program_of([*thoughts, t]) if t else program_of(thoughts)) for t in picks]


@dataclass
class SampledAgent(ContinuingAgent):
    """A continuing agent whose samples are random, drawn from `ideas` by weight, with a seeded
    generator per (seed, state, sample number): the same seed gives the same samples."""

    seed: int = 0
    slip: float = 0.3  # chance that a program appends a wrong op after the chain

    def _rng(self, method: str, thoughts, i: int) -> random.Random:
        return random.Random(f"{self.seed}|{self.name}|{method}|{'|'.join(thoughts)}|{i}")

    def _program(self, rng: random.Random, chain) -> str:
        return program_of([*chain, "negate"]) if rng.random() < self.slip else program_of(chain)

    async def continue_from(self, problem, thoughts, n):
        numbers = self._draw("continue_from", thoughts, n)
        await self._call("continue_from", problem, thoughts)
        out = []
        for i in numbers:
            rng = self._rng("continue", thoughts, i)
            options = [(t, w) for t, w in self.ideas if t is None or t not in thoughts] or [(None, 1.0)]
            thought = rng.choices([t for t, _ in options], weights=[w for _, w in options])[0]
            chain = [*thoughts, thought] if thought else list(thoughts)
            out.append(Continuation(thought, self._program(rng, chain)))
        return out

    async def write_code(self, problem, thoughts, n):
        numbers = self._draw("write_code", thoughts, n)
        await self._call("write_code", problem, thoughts)
        return [self._program(self._rng("code", thoughts, i), thoughts) for i in numbers]


@dataclass
class FakeExecutor:
    seen_tests: list[CallTest] = field(default_factory=list)
    runs: int = 0

    async def arun(self, program: str, tests) -> RunResult:
        self.runs += 1
        self.seen_tests.extend(tests)
        ops = [o for o in program.removeprefix("ops:").split(",") if o]
        outcomes = []
        for i, t in enumerate(tests):
            x = t.args[0]
            for o in ops:
                x = OPS[o](x)
            ok = x == t.expected
            outcomes.append(
                TestOutcome(
                    index=i, kind="call", status="passed" if ok else "failed", time_s=0.0,
                    input=str(t.args), expected=None if ok else str(t.expected), actual=None if ok else str(x),
                )
            )
        return RunResult.of(outcomes, len(tests), 0.0)
