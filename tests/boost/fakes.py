"""Deterministic agents and executor for unit tests of the search logic only.

A "program" here is the text `ops:<op>,<op>...`; the fake executor applies the ops to each
call test's argument. Each agent knows some correct steps and some wrong ones, so what the
tree finds depends on which agents take part: exactly what mutual boosting is about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from bdc_ray.boost.interfaces import Proposal
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
class FakeAgent:
    """Proposes its `ideas` in order (skipping ones already in the chain); codes the chain."""

    name: str
    ideas: list[tuple[str, float]]
    refinements: dict[str, str] = field(default_factory=dict)
    merges: dict[tuple[str, str], str] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=lambda: {"propose": 0, "write_code": 0, "refine": 0, "merge": 0})

    def _see(self, *texts) -> None:
        self.seen.extend(str(t) for t in texts)

    async def propose(self, problem, thoughts, width):
        self.calls["propose"] += 1
        self._see(problem.model_dump_json(), *thoughts)
        fresh = [(t, p) for t, p in self.ideas if t not in thoughts]
        return [Proposal(t, p) for t, p in fresh[:width]]

    async def write_code(self, problem, thoughts, n):
        self.calls["write_code"] += 1
        self._see(problem.model_dump_json(), *thoughts)
        return [program_of(thoughts)] * n

    async def refine(self, problem, thoughts, thought, feedback):
        self.calls["refine"] += 1
        self._see(problem.model_dump_json(), *thoughts, thought, feedback)
        better = self.refinements.get(thought)
        return Proposal(better, 0.9) if better else None

    async def merge(self, problem, thoughts, first, second):
        self.calls["merge"] += 1
        self._see(problem.model_dump_json(), *thoughts, first, second)
        merged = self.merges.get((first, second))
        return Proposal(merged, 0.7) if merged else None


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
