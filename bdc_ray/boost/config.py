"""Every knob of the Boost stage: which problems, how many at once, and the search itself."""

from __future__ import annotations

from typing import Callable

from pydantic import BaseModel, ConfigDict, Field, model_validator

SYNTHETIC = "synthetic:"
DEFAULT_ROLLOUTS = 16  # the reference code's rollouts per problem, when no generation budget is given


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


class BoostStage(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    problems: str = Field(
        "synthetic:train",
        description="'synthetic:<split>' (the run's generated suite) or a problem file (any supported format).",
    )
    format: str | None = Field(None, description="Format of a problem file; None = detect.")
    max_problems: int | None = Field(
        None, ge=1, description="Search only N problems, taken round-robin across families (the first of each)."
    )
    max_concurrent_problems: int = Field(8, ge=1, description="Searches in flight at once (across the cluster).")
    max_attempts: int = Field(3, ge=1, description="Tries per problem when an actor dies mid-search.")
    search: SearchConfig = Field(default_factory=SearchConfig)

    def resolve_paths(self, resolve: Callable[[str], str]) -> None:
        """A problem file is found relative to the config file's folder."""
        if not self.problems.startswith(SYNTHETIC):
            self.problems = resolve(self.problems)
