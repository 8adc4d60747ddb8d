"""What the tree search needs from the outside world, and how it is configured.

Agents and the executor are protocols so the search runs unchanged over deterministic fakes
(unit tests), local models, or Ray actor handles spread over a cluster. Every method is async:
within one expansion all agents are awaited together, and many problems share one event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bdc_ray.problems.types import Problem, Test
from bdc_ray.sandbox import RunResult

DEFAULT_ROLLOUTS = 16  # the reference code's rollouts per problem, when no generation budget is given


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
    async def run(self, program: str, tests: Sequence[Test]) -> RunResult:
        """Run `program` on `tests` in the sandbox."""


class SearchConfig(BaseModel):
    """MC-Tree-of-Agents knobs (DESIGN.md section 2); defaults are the reference code's where it has one."""

    model_config = ConfigDict(extra="forbid")

    rollouts: int | None = Field(
        DEFAULT_ROLLOUTS,
        ge=1,
        description="Cap on select-expand-simulate-backup iterations per problem; None = no cap (the generation "
        f"budget ends the search). Left unset with max_generations given, it is None; otherwise {DEFAULT_ROLLOUTS}.",
    )
    width: int = Field(
        3, ge=1, description="Samples each agent draws per expansion: next thoughts, or continuations that carry programs."
    )
    n_sim: int = Field(
        2,
        ge=1,
        description="Programs each agent writes when a state is simulated: the root, a child proposed as a bare "
        "thought, a re-simulated leaf.",
    )
    max_depth: int = Field(4, ge=1, description="Maximum number of thoughts in a state; deeper states are re-simulated.")
    c_base: float = Field(10.0, gt=0, description="P-UCB base constant.")
    c: float = Field(4.0, ge=0, description="P-UCB exploration constant.")
    discount: float = Field(0.9, gt=0, le=1, description="Discount of returns per level in backup.")
    default_prior: float = Field(0.5, gt=0, le=1, description="Prior when an agent's confidence is unparsable.")
    prune_threshold: float = Field(
        0.0, ge=0, le=1, description="A child whose value is below this, or below its parent's, is pruned (and refined)."
    )
    refine: bool = Field(
        True, description="Ask a pruned child's proposer for a refined thought from the feedback (agents that can read it)."
    )
    dedup_threshold: float = Field(0.9, gt=0, le=1, description="Similarity above which two thoughts are merged as text.")
    merge_threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Similarity from which two thoughts (below dedup_threshold) are merged by their first proposer's "
        "LLM into one; None = off. Only agents that can merge (instruct) are asked; others leave both.",
    )
    stop_on_solve: bool = Field(True, description="Stop when a program passes every public test.")
    max_generations: int | None = Field(
        None,
        ge=1,
        description="Budget of LLM generations per problem (one thought, program, continuation, refinement or merge "
        "each); the search spends it all unless it solves the problem first. None = rollouts only.",
    )
    simulate_root: bool = Field(
        True,
        description="Agents that propose bare thoughts first write n_sim programs from the empty-thought root. "
        "Agents that continue skip it: their first expansion of the root already is plain samples.",
    )
    continuations: bool = Field(
        True,
        description="Agents that can (completion style) expand a state by sampling whole continuations: the first "
        "thought line is the child, the program its simulation, at no extra generation. False: every agent proposes "
        "bare thoughts and children are simulated separately (the paper's loop, what instruct agents always do).",
    )
    cross_sim: int = Field(
        0,
        ge=0,
        description="Programs each OTHER agent writes for a child proposed by continuation (mutual verification by "
        "execution); 0 = the proposer's own program only, the other agents continue the child when it is expanded.",
    )
    widen_k: float = Field(
        1.0,
        gt=0,
        description="Progressive widening: a state with children is expanded again while its expansions < "
        "widen_k * visits ** widen_alpha.",
    )
    widen_alpha: float = Field(
        0.5, ge=0, le=1, description="Progressive widening exponent; 0 with widen_k 1 = one expansion per state."
    )
    parallel_rollouts: int = Field(
        1,
        ge=1,
        description="Concurrent select-expand-simulate-backup loops per problem; virtual loss on each selected path "
        "makes concurrent selections diverge.",
    )

    @model_validator(mode="after")
    def _an_end(self) -> "SearchConfig":
        if self.max_generations is not None and "rollouts" not in self.model_fields_set:
            self.rollouts = None
        if self.rollouts is None and self.max_generations is None:
            raise ValueError("rollouts and max_generations are both None: give a rollout cap or a generation budget")
        return self
