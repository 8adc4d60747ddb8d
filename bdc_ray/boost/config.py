"""Every knob of the Boost stage: which problems, how many at once, and the search itself."""

from __future__ import annotations

from typing import Callable

from pydantic import BaseModel, ConfigDict, Field

SYNTHETIC = "synthetic:"


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
