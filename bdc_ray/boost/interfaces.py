"""What the tree search needs from the outside world.

Agents and the executor are protocols so the search runs unchanged over deterministic fakes
(unit tests), local models, or Ray actor handles spread over a cluster. Every method is async:
within one expansion all agents are awaited together, and many problems share one event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from bdc_ray.problems.types import Problem, Test
from bdc_ray.sandbox import RunResult

@dataclass(frozen=True)
class Proposal:
    """One candidate next thought with the proposer's stated confidence in [0, 1]."""

    text: str
    prior: float


@dataclass(frozen=True)
class Continuation:
    """One sampled continuation of a state: its first thought line (None when the sample went
    straight to code) and the program that follows that thought."""

    thought: str | None
    program: str


class Agent(Protocol):
    name: str
    continues: bool
    """A sampled program also carries its next thought (completion-style models: `continue_from`)."""
    refines: bool
    """Reads execution feedback and rewrites a step (`refine`)."""
    merges: bool
    """Combines two near-duplicate thoughts into one (`merge`)."""

    async def propose(self, problem: Problem, thoughts: Sequence[str], width: int) -> list[Proposal]:
        """Up to `width` distinct next thoughts for the state (problem + thoughts)."""

    async def write_code(self, problem: Problem, thoughts: Sequence[str], n: int) -> list[str]:
        """`n` complete programs that follow the thoughts."""

    async def continue_from(self, problem: Problem, thoughts: Sequence[str], n: int) -> list[Continuation]:
        """`n` sampled continuations of the state (only called when `continues`)."""

    async def refine(self, problem: Problem, thoughts: Sequence[str], thought: str, feedback: str) -> Proposal | None:
        """A corrected version of `thought` (the last step) given execution feedback, or None (only when `refines`)."""

    async def merge(self, problem: Problem, thoughts: Sequence[str], first: str, second: str) -> Proposal | None:
        """One thought combining two near-duplicate candidates, or None (only when `merges`)."""


class Executor(Protocol):
    """Runs programs in the sandbox: the Ray sandbox pool (`SandboxPool.arun`), or a fake."""

    async def arun(self, program: str, tests: Sequence[Test]) -> RunResult:
        """Run `program` on `tests` in the sandbox."""
