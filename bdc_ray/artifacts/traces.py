"""Trace records (`boost/traces/<hash>.jsonl`): one finished Boost search per problem.

A record holds what the search found (best program, its thoughts and agent, every evaluated
program, step preference pairs, tree statistics, who did what) and what trusted code measured
afterwards: the best program's HIDDEN-test result, which the search itself never saw. One file
per problem, written atomically once: resuming is "skip the ids that have a file".
"""

from __future__ import annotations

import hashlib

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bdc_ray import storage


class Evaluation(BaseModel):
    """One program simulated from a state, and its public-test reward."""

    model_config = ConfigDict(extra="forbid")

    thoughts: list[str]
    agent: str
    program: str
    reward: float
    status: str


class PreferencePair(BaseModel):
    """At one state, a child whose value rose over the state's beats one whose value fell."""

    model_config = ConfigDict(extra="forbid")

    thoughts: list[str]
    chosen: str
    rejected: str
    chosen_value: float
    rejected_value: float
    chosen_agent: str
    rejected_agent: str


class AnytimePoint(BaseModel):
    """A change of the chosen program (best public reward so far, ties to the earliest) and the
    generation count at which it happened: the chosen program after g generations is the last point
    with `generations <= g`, so one search at budget B gives its result at every b <= B."""

    model_config = ConfigDict(extra="forbid")

    generations: int
    reward: float
    agent: str
    prefix_depth: int = Field(description="Thoughts in the prompt the program was written from (0: a plain sample).")
    program: str


class SearchResult(BaseModel):
    """What one MC-Tree-of-Agents search found, on public tests only (boost/search.py makes it)."""

    model_config = ConfigDict(extra="forbid")

    problem_id: str
    best_program: str
    best_reward: float
    best_thoughts: list[str]
    best_agent: str | None
    evaluations: list[Evaluation]
    preferences: list[PreferencePair]
    tree_size: int
    tree_depth: int
    rollouts: int
    llm_generations: dict[str, int]
    sandbox_runs: dict[str, int]
    solved_public: bool
    thoughts_by_agent: dict[str, int] = {}
    generations_by_kind: dict[str, int] = Field(
        default_factory=dict, description="thought, continuation, program, refine, merge: what the budget was spent on."
    )
    best_generation: int | None = Field(None, description="The generation number of the best program (ties: earliest).")
    best_thought_agents: list[str] = Field(
        default_factory=list, description="The proposer of each of best_thoughts: with best_agent, who built the answer."
    )
    solved_by: Literal["root", "tree"] | None = Field(
        None,
        description="For a public-solved problem: 'root' when the best program was a plain sample (a prompt without "
        "thoughts, what best-of-N draws too), 'tree' when it was written from a thought chain the tree chose.",
    )
    anytime: list[AnytimePoint] = Field(default_factory=list)
    tree: dict[str, Any] | None = Field(None, description="boost.tree.tree_record: the searched tree, for the explorer.")


class TraceRecord(SearchResult):
    """A search's result, the problem it was about, and its best program's hidden-test result."""

    source: str
    family: str | None
    difficulty: str | None
    prompt: str
    public_pass_rate: float
    hidden_pass_rate: float
    hidden_passed_all: bool
    hidden_status: str | None
    wall_s: float


def trace_path(traces_dir: str, problem_id: str) -> str:
    """One file per problem, named by a hash so any id (slashes, spaces) is a safe name."""
    digest = hashlib.sha256(problem_id.encode()).hexdigest()[:24]
    return storage.join(traces_dir, f"{digest}.jsonl")


def write_trace(traces_dir: str, record: TraceRecord) -> None:
    storage.write_jsonl_atomic(trace_path(traces_dir, record.problem_id), [record.model_dump(mode="json")])


def read_traces(traces_dir: str) -> list[TraceRecord]:
    """Every record under `traces_dir`, ordered by problem id (none when the folder is absent)."""
    fs, root = storage.filesystem(traces_dir)
    if not fs.exists(root):
        return []
    records = []
    for path in sorted(fs.glob(f"{root}/*.jsonl")):
        records += [TraceRecord.model_validate(r) for r in storage.read_jsonl(fs.unstrip_protocol(path))]
    return sorted(records, key=lambda r: r.problem_id)


def finished_ids(traces_dir: str) -> set[str]:
    return {r.problem_id for r in read_traces(traces_dir)}
