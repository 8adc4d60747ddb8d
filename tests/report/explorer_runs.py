"""Traces for the explorer's tests, each made by the real search and the real record code.

`fake_records`: over the `ops:` fakes of tests/boost, no sandbox (unit tests). `write_run`: over
deterministic agents that write real Python, every program run in the real sandbox, written
where Boost writes its traces (the browser test).

The agents know different steps (A doubles and negates, B adds and triples...), so some answers
need a thought of one agent extended by the other's: what the explorer is for.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Sequence

from bdc_ray import storage
from bdc_ray.artifacts.traces import trace_path
from bdc_ray.boost.config import SearchConfig
from bdc_ray.boost.records import trace_record
from bdc_ray.boost.search import MCTreeOfAgents
from bdc_ray.problems.types import CallTest, Problem
from bdc_ray.sandbox import RunResult, Sandbox
from tests.boost.fakes import FakeAgent, FakeExecutor, problem

STEPS = {
    "double x": ("x = 2 * x", lambda x: 2 * x),
    "negate x": ("x = -x", lambda x: -x),
    "square x": ("x = x * x", lambda x: x * x),
    "halve x, rounding down": ("x = x // 2", lambda x: x // 2),
    "add one": ("x = x + 1", lambda x: x + 1),
    "subtract three": ("x = x - 3", lambda x: x - 3),
    "triple x": ("x = 3 * x", lambda x: 3 * x),
    "keep only the last digit": ("x = x % 10", lambda x: x % 10),
}

HOSTILE = "</script><script>alert(1)</script><!-- & \u2028 end"


def fake_records() -> list[dict[str, Any]]:
    """Three real searches over the `ops:` fakes (no sandbox): solved at the root, by the tree (A's
    thought extended by B's), and not at all; plus the last one as a trace from before trees were kept."""
    executor = FakeExecutor()
    records = []
    for pid, family, steps in [("p/root", "io", ()), ("p/tree", "arith", ("double", "add one")),
                               ("p/none", "arith", ("square", "square"))]:
        a = FakeAgent("A", [("double", 0.9), (HOSTILE, 0.2)])
        b = FakeAgent("B", [("add one", 0.8)])
        p = problem(steps).model_copy(update={"id": pid, "family": family})
        config = SearchConfig(rollouts=4, width=2, n_sim=1)
        result = asyncio.run(MCTreeOfAgents([a, b], executor, config).search(p.public_view()))
        hidden = asyncio.run(executor.arun(result.best_program, p.hidden_tests))
        records.append(trace_record(p, result, hidden, 0.1).model_dump(mode="json"))
    old = {k: v for k, v in records[2].items() if k != "tree"}
    return [*records, {**old, "problem_id": "p/old"}]


def python_program(thoughts: Sequence[str]) -> str:
    """The program an agent writes after `thoughts`: one line per step it knows, in order."""
    lines = ["def f(x):"]
    for t in thoughts:
        if t in STEPS:
            lines += [f"    # {t}", f"    {STEPS[t][0]}"]
    return "\n".join([*lines, "    return x", ""])


class PythonAgent(FakeAgent):
    """FakeAgent's proposals and refinements; programs in Python instead of the `ops:` language."""

    async def write_code(self, problem, thoughts, n):
        self.calls["write_code"] += 1
        return [python_program(thoughts)] * n


@dataclass
class SandboxExecutor:
    """The search's Executor over a local sandbox pool (thread-safe runs, one worker each)."""

    sandbox: Sandbox

    async def arun(self, program: str, tests) -> RunResult:
        return await asyncio.to_thread(self.sandbox.run, program, list(tests))


def make_problem(pid: str, family: str, steps: Sequence[str]) -> Problem:
    def f(x):
        for s in steps:
            x = STEPS[s][1](x)
        return x

    return Problem(
        id=pid, source="explorer-test", family=family, prompt=f"Write f(x) that applies: {', '.join(steps) or 'nothing'}.",
        public_tests=[CallTest(fn_name="f", args=[x], expected=f(x)) for x in (1, 2, 7)],
        hidden_tests=[CallTest(fn_name="f", args=[x], expected=f(x)) for x in (5, 13)],
    )


def agents() -> list[PythonAgent]:
    a = PythonAgent("agent-a", [("negate x", 0.6), ("double x", 0.5), ("square x", 0.4), ("halve x, rounding down", 0.3)],
                    refinements={"negate x": "double x", "square x": "halve x, rounding down"})
    b = PythonAgent("agent-b", [("subtract three", 0.7), ("add one", 0.6), ("triple x", 0.5),
                                ("keep only the last digit", 0.2)],
                    refinements={"subtract three": "add one"})
    return [a, b]


SMALL = [
    ("demo/identity", "arith", ()),  # the bare problem's program already passes: solved at the root
    ("demo/double-then-add", "arith", ("double x", "add one")),  # needs a thought of each agent
    ("demo/triple-then-double", "list", ("triple x", "double x")),
    ("demo/square-then-subtract", "string", ("square x", "subtract three", "subtract three")),  # too deep: unsolved
]
BIG = ("demo/wide-search", "string", ("triple x", "add one", "double x", "keep only the last digit"))


async def _search_all(sandbox: Sandbox, jobs) -> list[dict[str, Any]]:
    executor = SandboxExecutor(sandbox)
    records = []
    for problem, config in jobs:
        result = await MCTreeOfAgents(agents(), executor, config).search(problem.public_view())
        hidden = await executor.arun(result.best_program, problem.hidden_tests)
        records.append(trace_record(problem, result, hidden, 0.0).model_dump(mode="json"))
    return records


def write_traces(run_dir: str, records: Sequence[dict[str, Any]]) -> None:
    """Each record as its own trace file, where the Boost stage writes them."""
    for record in records:
        storage.write_jsonl_atomic(trace_path(storage.join(run_dir, "boost", "traces"), record["problem_id"]), [record])


def write_run(run_dir: str, sandbox: Sandbox) -> list[dict[str, Any]]:
    """Search the small problems and the 200-node one and write their traces under `run_dir`."""
    small = SearchConfig(rollouts=6, width=3, n_sim=1, max_depth=3, widen_alpha=0)  # one expansion per state
    wide = SearchConfig(rollouts=56, width=4, n_sim=1, max_depth=4, stop_on_solve=False, widen_alpha=0)
    jobs = [*((make_problem(pid, fam, steps), small) for pid, fam, steps in SMALL), (make_problem(*BIG), wide)]
    records = asyncio.run(_search_all(sandbox, jobs))
    write_traces(run_dir, records)
    return records
