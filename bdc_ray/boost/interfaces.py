"""What the tree search needs from the outside world, and how it is configured.

Agents and the executor are protocols so the search runs unchanged over deterministic fakes
(unit tests), local models, or Ray actor handles spread over a cluster. Every method is async:
within one expansion all agents are awaited together, and many problems share one event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from pydantic import BaseModel, ConfigDict, Field

from bdc_ray.problems.types import Problem, Test
from bdc_ray.sandbox import RunResult


@dataclass(frozen=True)
class Proposal:
    """One candidate next thought with the proposer's stated confidence in [0, 1]."""

    text: str
    prior: float


class Agent(Protocol):
    name: str

    async def propose(self, problem: Problem, thoughts: Sequence[str], width: int) -> list[Proposal]:
        """Up to `width` distinct next thoughts for the state (problem + thoughts)."""

    async def write_code(self, problem: Problem, thoughts: Sequence[str], n: int) -> list[str]:
        """`n` complete programs that follow the thoughts."""

    async def refine(self, problem: Problem, thoughts: Sequence[str], thought: str, feedback: str) -> Proposal | None:
        """A corrected version of `thought` (the last step) given execution feedback, or None."""


    async def merge(self, problem: Problem, thoughts: Sequence[str], first: str, second: str) -> Proposal | None:
        """One thought combining two near-duplicate candidates, or None when the agent cannot merge."""


class Executor(Protocol):
    """Runs programs in the sandbox: the Ray sandbox pool (`SandboxPool.arun`), or a fake."""

    async def arun(self, program: str, tests: Sequence[Test]) -> RunResult:
        """Run `program` on `tests` in the sandbox."""


class SearchConfig(BaseModel):
    """MC-Tree-of-Agents knobs (DESIGN.md section 2); defaults are the reference code's."""

    model_config = ConfigDict(extra="forbid")

    rollouts: int = Field(16, ge=1, description="Select-expand-simulate-backup iterations per problem.")
    width: int = Field(3, ge=1, description="Thoughts each agent proposes per expansion.")
    n_sim: int = Field(2, ge=1, description="Programs each agent writes per simulated state.")
    max_depth: int = Field(4, ge=1, description="Maximum number of thoughts in a state.")
    c_base: float = Field(10.0, gt=0, description="P-UCB base constant.")
    c: float = Field(4.0, ge=0, description="P-UCB exploration constant.")
    discount: float = Field(0.9, gt=0, le=1, description="Discount of returns per level in backup.")
    default_prior: float = Field(0.5, gt=0, le=1, description="Prior when an agent's confidence is unparsable.")
    prune_threshold: float = Field(
        0.0, ge=0, le=1, description="A child whose value is below this, or below its parent's, is pruned (and refined)."
    )
    refine: bool = Field(True, description="Ask a pruned child's proposer for a refined thought from the feedback.")
    dedup_threshold: float = Field(0.9, gt=0, le=1, description="Similarity above which two thoughts are merged as text.")
    merge_threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Similarity from which two thoughts (below dedup_threshold) are merged by their first proposer's "
        "LLM into one; None = off. For instruct agents; completion agents cannot merge and leave both.",
    )
    stop_on_solve: bool = Field(True, description="Stop when a program passes every public test.")
    max_generations: int | None = Field(
        None, ge=1, description="Budget of LLM generations (samples) per problem; None = rollouts only."
    )
    simulate_root: bool = Field(True, description="Simulate the empty-thought root first (a zero-thought baseline).")

