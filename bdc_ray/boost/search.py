"""MC-Tree-of-Agents: one problem searched by several agents together (DESIGN.md section 2).

A rollout selects a leaf by P-UCB, lets EVERY agent propose next thoughts for it (near
duplicates merged), has every agent write programs from each new state and scores them on the
PUBLIC tests (thought-to-solution simulation, mutual verification by execution), prunes children
that do worse than their parent and asks their proposer for a refined thought from the execution
feedback, then backs the best discounted value up the path.

The search never sees hidden tests: it refuses a problem that carries any.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from bdc_ray.boost.dedupe import merge_near_duplicates, similar_pairs
from bdc_ray.boost.interfaces import Agent, Executor, Proposal, SearchConfig
from bdc_ray.boost.tree import Action, Simulation, State, backup, iter_states, select_leaf, tree_record
from bdc_ray.problems.types import Problem
from bdc_ray.sandbox import RunResult


class HiddenTestsLeak(ValueError):
    """A problem with hidden tests was handed to the search; pass `problem.public_view()`."""


@dataclass
class Budget:
    """LLM generations left for one problem; grants what remains, never more."""

    remaining: int | None

    def take(self, wanted: int) -> int:
        if self.remaining is None:
            return wanted
        granted = max(0, min(wanted, self.remaining))
        self.remaining -= granted
        return granted

    def refund(self, n: int) -> None:
        if self.remaining is not None:
            self.remaining += n

    @property
    def spent(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


@dataclass
class SearchResult:
    problem_id: str
    best_program: str
    best_reward: float
    best_thoughts: list[str]
    best_agent: str | None
    evaluations: list[dict[str, Any]]
    preferences: list[dict[str, Any]]
    tree_size: int
    tree_depth: int
    rollouts: int
    llm_generations: dict[str, int]
    sandbox_runs: dict[str, int]
    solved_public: bool
    thoughts_by_agent: dict[str, int] = field(default_factory=dict)
    tree: dict[str, Any] | None = None  # tree.tree_record: the searched tree, for the explorer


def feedback_text(result: RunResult, limit: int = 400) -> str:
    """Execution feedback for reflection: the first failing PUBLIC test, or the error."""
    ff = result.first_failure
    if ff is None:
        return "All public tests passed." if result.status == "passed" else f"Status: {result.status}."
    parts = [f"Status: {ff.status}."]
    if ff.error:
        parts.append(f"Error: {ff.error.strip()[-limit:]}")
    else:
        parts.append(f"Input: {str(ff.input)[:limit]}")
        parts.append(f"Expected: {str(ff.expected)[:limit]}")
        parts.append(f"Got: {str(ff.actual)[:limit]}")
    return "\n".join(parts)


class MCTreeOfAgents:
    def __init__(self, agents: Sequence[Agent], executor: Executor, config: SearchConfig):
        if not agents:
            raise ValueError("MC-Tree-of-Agents needs at least one agent")
        names = [a.name for a in agents]
        if len(set(names)) != len(names):
            raise ValueError(f"agent names must be unique, got {names}")
        self.agents = list(agents)
        self.by_name = {a.name: a for a in agents}
        self.executor = executor
        self.cfg = config

    async def search(self, problem: Problem) -> SearchResult:
        if problem.hidden_tests:
            raise HiddenTestsLeak(f"{problem.id}: the search was given hidden tests; pass problem.public_view()")
        if not problem.public_tests:
            raise ValueError(f"{problem.id}: no public tests to reward the search with")
        run = _Run(self, problem)
        return await run.execute()


class _Run:
    """The state of one problem's search (kept off the shared searcher so problems interleave)."""

    def __init__(self, searcher: MCTreeOfAgents, problem: Problem):
        self.s = searcher
        self.cfg = searcher.cfg
        self.problem = problem
        self.root = State(())
        self.budget = Budget(self.cfg.max_generations)
        self.generations: Counter[str] = Counter()
        self.sandbox_runs: Counter[str] = Counter()
        self.proposed: Counter[str] = Counter()
        self.rollouts = 0
        self.solved = False  # set by _simulate, so the loop test does not walk the tree

    def _done(self) -> bool:
        return (self.cfg.stop_on_solve and self.solved) or self.budget.spent

    async def execute(self) -> SearchResult:
        if self.cfg.simulate_root:
            await self._simulate(self.root)
            self.root.visits = 1
        while self.rollouts < self.cfg.rollouts and not self._done():
            self.rollouts += 1
            leaf = select_leaf(self.root, self.cfg.c_base, self.cfg.c)
            children = await self._expand(leaf) if leaf.depth < self.cfg.max_depth else []
            if children:
                await asyncio.gather(*(self._simulate(a.child) for a in children))
                for action in children:
                    self._score(action)
                children = await self._prune_and_refine(leaf, children)
            own = leaf.value or 0.0
            below = max((a.q for a in leaf.open_children()), default=0.0)
            backup(leaf, max(own, self.cfg.discount * below), self.cfg.discount)
        return self._result()

    async def _expand(self, leaf: State) -> list[Action]:
        thoughts = list(leaf.thoughts)
        grants = [(agent, self.budget.take(self.cfg.width)) for agent in self.s.agents]
        calls = [agent.propose(self.problem, thoughts, n) for agent, n in grants if n > 0]
        asked = [(agent, n) for agent, n in grants if n > 0]
        replies = await asyncio.gather(*calls)
        pairs: list[tuple[str, Proposal]] = []
        for (agent, n), props in zip(asked, replies):
            self.generations[agent.name] += n
            pairs += [(agent.name, self._clamp(p)) for p in props[:n]]
        merged = merge_near_duplicates(pairs, self.cfg.dedup_threshold, existing=[a.thought for a in leaf.children])
        if self.cfg.merge_threshold is not None and self.cfg.merge_threshold < self.cfg.dedup_threshold:
            merged = await self._merge_similar(thoughts, merged)
        leaf.expansions += 1
        actions = []
        for agent_name, prop in merged:
            self.proposed[agent_name] += 1
            actions.append(self._attach(leaf, prop, agent_name, "detail"))
        return actions

    async def _merge_similar(self, thoughts: list[str], kept: list[tuple[str, Proposal]]) -> list[tuple[str, Proposal]]:
        """Ask the first proposer of each similar pair for one thought that combines both."""
        pairs = similar_pairs([p.text for _, p in kept], self.cfg.merge_threshold, self.cfg.dedup_threshold)  # type: ignore[arg-type]
        pairs = [(i, j) for i, j in pairs if self.budget.take(1)]

        async def merge(i: int, j: int) -> Proposal | None:
            agent = self.s.by_name[kept[i][0]]
            result = await agent.merge(self.problem, thoughts, kept[i][1].text, kept[j][1].text)
            if result is None:
                self.budget.refund(1)
            else:
                self.generations[agent.name] += 1
            return result

        results = await asyncio.gather(*(merge(i, j) for i, j in pairs))
        out = list(kept)
        dropped = set()
        for (i, j), prop in zip(pairs, results):
            if prop is not None and prop.text.strip():
                prior = max(kept[i][1].prior, kept[j][1].prior, self._clamp(prop).prior)
                out[i] = (kept[i][0], Proposal(prop.text.strip(), prior))
                dropped.add(j)
        return [item for k, item in enumerate(out) if k not in dropped]

    def _clamp(self, p: Proposal) -> Proposal:
        prior = p.prior if 0.0 < p.prior <= 1.0 else self.cfg.default_prior
        return Proposal(p.text.strip(), prior)

    @staticmethod
    def _attach(leaf: State, prop: Proposal, agent: str, kind: str, refined_from: Action | None = None) -> Action:
        action = Action(prop.text, agent, prop.prior, leaf, kind=kind, refined_from=refined_from)  # type: ignore[arg-type]
        action.child = State((*leaf.thoughts, prop.text), parent=action)
        leaf.children.append(action)
        return action

    async def _simulate(self, state: State) -> None:
        """Every agent writes programs from the state; value = mean public pass rate."""
        grants = [(agent, self.budget.take(self.cfg.n_sim)) for agent in self.s.agents]
        asked = [(agent, n) for agent, n in grants if n > 0]
        codes = await asyncio.gather(*(agent.write_code(self.problem, list(state.thoughts), n) for agent, n in asked))
        jobs = []
        for (agent, n), programs in zip(asked, codes):
            self.generations[agent.name] += n
            jobs += [(agent.name, prog) for prog in programs[:n]]
        results = await asyncio.gather(*(self.s.executor.run(prog, self.problem.public_tests) for _, prog in jobs))
        for (agent_name, prog), res in zip(jobs, results):
            self.sandbox_runs[agent_name] += 1
            reward = res.passed / res.total if res.total else 0.0
            state.simulations.append(Simulation(agent_name, prog, reward, res.status, feedback_text(res)))
            self.solved = self.solved or reward >= 1.0
        if state.simulations:
            state.value = sum(s.reward for s in state.simulations) / len(state.simulations)

    @staticmethod
    def _score(action: Action) -> None:
        assert action.child is not None
        action.returns.append(action.child.value or 0.0)
        action.visits = action.child.visits = 1

    def _weak(self, leaf: State, action: Action) -> bool:
        value = action.child.value if action.child else None
        return value is None or value < self.cfg.prune_threshold or value < (leaf.value or 0.0)

    async def _prune_and_refine(self, leaf: State, children: list[Action]) -> list[Action]:
        weak = [a for a in children if self._weak(leaf, a)]
        for a in weak:
            a.pruned = True
        if not self.cfg.refine or not weak:
            return children
        refined = await asyncio.gather(*(self._refine(leaf, a) for a in weak))
        new = [a for a in refined if a is not None]
        for a in new:
            if self._weak(leaf, a):
                a.pruned = True
        return children + new

    async def _refine(self, leaf: State, action: Action) -> Action | None:
        if self.budget.take(1) < 1 or action.child is None:
            return None
        agent = self.s.by_name[action.agent]
        best = action.child.best_simulation()
        feedback = best.feedback if best else "No program could be written from this step."
        self.generations[agent.name] += 1
        prop = await agent.refine(self.problem, list(leaf.thoughts), action.thought, feedback)
        if prop is None or not prop.text.strip():
            return None
        prop = self._clamp(prop)
        if any(prop.text == a.thought for a in leaf.children):
            return None
        new = self._attach(leaf, prop, agent.name, "refine", refined_from=action)
        new.feedback = feedback
        await self._simulate(new.child)  # type: ignore[arg-type]
        self._score(new)
        return new

    def _result(self) -> SearchResult:
        states = list(iter_states(self.root))
        best_state, best_sim = None, None
        for st in sorted(states, key=lambda s: s.depth):
            for sim in st.simulations:
                if best_sim is None or sim.reward > best_sim.reward:
                    best_state, best_sim = st, sim
        evaluations = [
            {"thoughts": list(st.thoughts), "agent": sim.agent, "program": sim.program, "reward": sim.reward, "status": sim.status}
            for st in states
            for sim in st.simulations
        ]
        return SearchResult(
            problem_id=self.problem.id,
            best_program=best_sim.program if best_sim else "",
            best_reward=best_sim.reward if best_sim else 0.0,
            best_thoughts=list(best_state.thoughts) if best_state else [],
            best_agent=best_sim.agent if best_sim else None,
            evaluations=evaluations,
            preferences=step_preferences(states),
            tree_size=len(states),
            tree_depth=max(st.depth for st in states),
            rollouts=self.rollouts,
            llm_generations=dict(self.generations),
            sandbox_runs=dict(self.sandbox_runs),
            solved_public=bool(best_sim and best_sim.reward >= 1.0),
            thoughts_by_agent=dict(self.proposed),
            tree=tree_record(self.root, best_state),
        )


def step_preferences(states: Sequence[State]) -> list[dict[str, Any]]:
    """Step-level pairs: a child whose value rose over its parent's beats one whose value fell."""
    pairs = []
    for st in states:
        if st.value is None:
            continue
        scored = [a for a in st.children if a.child is not None and a.child.value is not None]
        better = [a for a in scored if a.child.value > st.value]  # type: ignore[operator, union-attr]
        worse = [a for a in scored if a.child.value < st.value]  # type: ignore[operator, union-attr]
        for good in better:
            for bad in worse:
                pairs.append(
                    {
                        "thoughts": list(st.thoughts),
                        "chosen": good.thought,
                        "rejected": bad.thought,
                        "chosen_value": good.child.value,  # type: ignore[union-attr]
                        "rejected_value": bad.child.value,  # type: ignore[union-attr]
                        "chosen_agent": good.agent,
                        "rejected_agent": bad.agent,
                    }
                )
    return pairs
