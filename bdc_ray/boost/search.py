"""MC-Tree-of-Agents: one problem searched by several agents together (DESIGN.md section 2).

A rollout selects a state by P-UCB (with progressive widening and virtual loss) and works on it:
- expand: EVERY agent samples `width` next steps for it. An agent that continues (completion
  style) samples whole continuations: the first thought line of each becomes a child (samples
  that agree merge into one child, prior = their share) and the program after it is that
  child's simulation, at no extra generation. Other agents propose bare thoughts (JSON with a
  stated confidence), and each new child is then simulated by every agent (`n_sim` programs
  each). Programs run on the PUBLIC tests (mutual verification by execution); children worse than
  their parent are pruned and, where the proposer reads feedback, refined from it;
- simulate: a state at the depth limit is simulated again (more programs from it).
The best discounted value is then backed up the path. With a generation budget the search runs
until the budget is spent or a program passes every public test: neither the depth limit nor an
exhausted width ends it early. `parallel_rollouts` loops share one tree.

Every generation (thought, program, continuation, refinement, merge) is numbered as it is
granted, so the best program after g generations can be read off the run for every g up to its
budget (`anytime`). The search never sees hidden tests: it refuses a problem that carries any.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from bdc_ray.artifacts.traces import AnytimePoint, Evaluation, PreferencePair, SearchResult
from bdc_ray.boost.config import SearchConfig
from bdc_ray.boost.dedupe import assign_groups, merge_near_duplicates, similar_pairs
from bdc_ray.boost.interfaces import Agent, Continuation, Executor, Proposal
from bdc_ray.boost.tree import (
    Action,
    Simulation,
    State,
    add_pending,
    backup,
    iter_states,
    path_to,
    refresh_value,
    select,
    tree_record,
)
from bdc_ray.problems.types import Problem
from bdc_ray.sandbox import RunResult


class HiddenTestsLeak(ValueError):
    """A problem with hidden tests was handed to the search; pass `problem.public_view()`."""


@dataclass
class Budget:
    """LLM generations of one problem: grants what remains, never more, numbered in grant order."""

    remaining: int | None
    used: int = 0

    def take(self, wanted: int) -> range:
        """The 1-based numbers of the generations granted (fewer than wanted when the budget ends)."""
        granted = wanted if self.remaining is None else max(0, min(wanted, self.remaining))
        if self.remaining is not None:
            self.remaining -= granted
        numbers = range(self.used + 1, self.used + 1 + granted)
        self.used += granted
        return numbers

    @property
    def spent(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


def last_lines(text: str, limit: int) -> str:
    """The last whole lines of `text` within `limit` characters: a traceback ends with what went
    wrong, and a first line cut mid-word ("ack (most recent call last)") only confuses a model."""
    text = text.strip()
    if len(text) <= limit:
        return text
    kept = text[-limit:]
    newline = kept.find("\n")
    return kept[newline + 1 :] if 0 <= newline < len(kept) - 1 else kept


def feedback_text(result: RunResult, limit: int = 400) -> str:
    """Execution feedback for reflection: the first failing PUBLIC test, or the error."""
    ff = result.first_failure
    if ff is None:
        return "All public tests passed." if result.status == "passed" else f"Status: {result.status}."
    parts = [f"Status: {ff.status}."]
    if ff.error:
        parts.append(f"Error: {last_lines(ff.error, limit)}")
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
        return await ProblemSearch(self, problem).execute()


@dataclass
class _Program:
    """A program waiting for its sandbox run, and where its result goes."""

    state: State
    agent: str
    program: str
    generation: int
    prefix_depth: int


class ProblemSearch:
    """The state of one problem's search (kept off the shared searcher so problems interleave);
    `root` is its tree, which stays readable after `execute`."""

    def __init__(self, searcher: MCTreeOfAgents, problem: Problem):
        if problem.hidden_tests:
            raise HiddenTestsLeak(f"{problem.id}: the search was given hidden tests; pass problem.public_view()")
        if not problem.public_tests:
            raise ValueError(f"{problem.id}: no public tests to reward the search with")
        self.s = searcher
        self.cfg = searcher.cfg
        self.problem = problem
        self.root = State(())
        self.budget = Budget(self.cfg.max_generations)
        self.generations: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self.sandbox_runs: Counter[str] = Counter()
        self.proposed: Counter[str] = Counter()
        self.rollouts = 0
        self.solved = False  # set when a program passes, so the loop test does not walk the tree

    def _done(self) -> bool:
        capped = self.cfg.rollouts is not None and self.rollouts >= self.cfg.rollouts
        return capped or (self.cfg.stop_on_solve and self.solved) or self.budget.spent

    def _continues(self, agent: Agent) -> bool:
        return self.cfg.continuations and agent.continues

    def _grant(self, agent: Agent, wanted: int, kind: str) -> range:
        numbers = self.budget.take(wanted)
        if numbers:
            self.generations[agent.name] += len(numbers)
            self.kinds[kind] += len(numbers)
        return numbers

    async def execute(self) -> SearchResult:
        thinkers = [a for a in self.s.agents if not self._continues(a)]
        if self.cfg.simulate_root and thinkers:
            await self._simulate(self.root, thinkers, self.cfg.n_sim)
            refresh_value(self.root)
            self.root.visits = 1
        await asyncio.gather(*(self._loop() for _ in range(self.cfg.parallel_rollouts)))
        return self._result()

    async def _loop(self) -> None:
        # _done, select and the first grants run without an await in between: concurrent loops
        # never start a rollout on a spent budget, and grants never exceed it.
        while not self._done():
            self.rollouts += 1
            await self._rollout()

    async def _rollout(self) -> None:
        cfg = self.cfg
        node, step = select(self.root, cfg.c_base, cfg.c, cfg.max_depth, cfg.widen_k, cfg.widen_alpha)
        add_pending(node, +1)
        try:
            if step == "expand":
                node.expansions += 1
                await self._expand(node)
            else:
                await self._simulate(node, self.s.agents, cfg.n_sim)
                refresh_value(node)
        finally:
            add_pending(node, -1)
        own = node.value or 0.0
        below = max((a.q for a in node.open_children()), default=0.0)
        backup(node, max(own, cfg.discount * below), cfg.discount)

    # --- expansion ------------------------------------------------------------------------

    async def _expand(self, leaf: State) -> None:
        thoughts = list(leaf.thoughts)
        asks = []
        for agent in self.s.agents:
            kind = "continuation" if self._continues(agent) else "thought"
            numbers = self._grant(agent, self.cfg.width, kind)
            if numbers:
                asks.append((agent, kind, numbers))
        replies = await asyncio.gather(
            *(
                agent.continue_from(self.problem, thoughts, len(numbers))
                if kind == "continuation"
                else agent.propose(self.problem, thoughts, len(numbers))
                for agent, kind, numbers in asks
            )
        )
        proposals: list[tuple[str, Proposal]] = []
        samples: list[tuple[str, Continuation, int]] = []
        for (agent, kind, numbers), reply in zip(asks, replies):
            if kind == "thought":
                proposals += [(agent.name, self._clamp(p)) for p in reply[: len(numbers)]]
            else:
                samples += [(agent.name, c, g) for c, g in zip(reply, numbers)]

        before = list(leaf.children)
        merged = merge_near_duplicates(proposals, self.cfg.dedup_threshold, existing=[a.thought for a in before])
        if self.cfg.merge_threshold is not None and self.cfg.merge_threshold < self.cfg.dedup_threshold:
            merged = await self._merge_similar(thoughts, merged)
        bare = [self._attach(leaf, prop, name, "detail") for name, prop in merged]
        continued = self._place_continuations(leaf, samples)

        runs = [_Program(leaf, name, c.program, g, leaf.depth) for name, c, g in samples if c.thought is None]
        for action, items in continued.items():
            runs += [_Program(action.child, name, c.program, g, leaf.depth) for name, c, g in items]  # type: ignore[arg-type]
        sims = [self._simulate(a.child, self.s.agents, self.cfg.n_sim) for a in bare if a not in continued]  # type: ignore[arg-type]
        if self.cfg.cross_sim:
            for action, items in continued.items():
                others = [a for a in self.s.agents if a.name not in {name for name, _, _ in items}]
                if others:
                    sims.append(self._simulate(action.child, others, self.cfg.cross_sim))  # type: ignore[arg-type]
        await asyncio.gather(self._run_programs(runs), *sims)

        new = bare + [a for a in continued if a not in before and a not in bare]
        for action in leaf.children:
            if action.child is not None:
                refresh_value(action.child)
        refresh_value(leaf)
        for action in new:
            self._score(action)
        for action in before:
            if action in continued:
                action.returns.append(action.child.value or 0.0)  # type: ignore[union-attr]
                action.pruned = self._weak(leaf, action)
        await self._prune_and_refine(leaf, new)

    def _place_continuations(
        self, leaf: State, samples: list[tuple[str, Continuation, int]]
    ) -> dict[Action, list[tuple[str, Continuation, int]]]:
        """Each sample that starts with a thought goes to the child with that thought (an existing
        one, or a new one for each group of agreeing samples, proposed by the first of them).

        Only the same thought (up to case, spaces and a final period) is merged, not a near
        duplicate: the program is the child's simulation and later its SFT target, and tiny
        models' near-duplicate first steps differ in the constant that decides the program
        ("first 3 characters" / "first 4 characters")."""
        with_thought = [item for item in samples if item[1].thought is not None]
        existing = list(leaf.children)
        groups = assign_groups([c.thought or "" for _, c, _ in with_thought], 1.0, [a.thought for a in existing])
        drawn = Counter(name for name, _, _ in samples)
        members: dict[int, list[tuple[str, Continuation, int]]] = {}
        for item, group in zip(with_thought, groups):
            members.setdefault(group, []).append(item)  # type: ignore[arg-type]
        placed: dict[Action, list[tuple[str, Continuation, int]]] = {}
        for group in sorted(members):
            items = members[group]
            share = max(n / drawn[name] for name, n in Counter(name for name, _, _ in items).items())
            if group < len(existing):
                action = existing[group]
                if action.visits == 0:  # a bare thought of this very expansion: agreeing samples are evidence
                    action.prior = max(action.prior, share)
            else:
                name, first, _ = items[0]
                action = self._attach(leaf, Proposal(first.thought or "", share), name, "detail")
            placed[action] = items
        return placed

    async def _merge_similar(self, thoughts: list[str], kept: list[tuple[str, Proposal]]) -> list[tuple[str, Proposal]]:
        """Ask the first proposer of each similar pair (if it can merge) for one thought that combines both."""
        pairs = similar_pairs([p.text for _, p in kept], self.cfg.merge_threshold, self.cfg.dedup_threshold)  # type: ignore[arg-type]
        pairs = [(i, j) for i, j in pairs if self.s.by_name[kept[i][0]].merges]
        pairs = [(i, j) for i, j in pairs if self._grant(self.s.by_name[kept[i][0]], 1, "merge")]

        async def merge(i: int, j: int) -> Proposal | None:
            return await self.s.by_name[kept[i][0]].merge(self.problem, thoughts, kept[i][1].text, kept[j][1].text)

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

    def _attach(self, leaf: State, prop: Proposal, agent: str, kind: str, refined_from: Action | None = None) -> Action:
        action = Action(prop.text, agent, prop.prior, leaf, kind=kind, refined_from=refined_from)  # type: ignore[arg-type]
        action.child = State((*leaf.thoughts, prop.text), parent=action)
        leaf.children.append(action)
        self.proposed[agent] += 1
        return action

    # --- simulation -----------------------------------------------------------------------

    async def _simulate(self, state: State, agents: Sequence[Agent], n: int) -> None:
        """The agents write `n` programs each from the state; they run on the public tests."""
        asks = [(agent, self._grant(agent, n, "program")) for agent in agents]
        asks = [(agent, numbers) for agent, numbers in asks if numbers]
        codes = await asyncio.gather(
            *(agent.write_code(self.problem, list(state.thoughts), len(numbers)) for agent, numbers in asks)
        )
        runs = [
            _Program(state, agent.name, program, g, state.depth)
            for (agent, numbers), programs in zip(asks, codes)
            for program, g in zip(programs, numbers)
        ]
        await self._run_programs(runs)

    async def _run_programs(self, runs: list[_Program]) -> None:
        results = await asyncio.gather(*(self.s.executor.arun(r.program, self.problem.public_tests) for r in runs))
        for r, res in zip(runs, results):
            self.sandbox_runs[r.agent] += 1
            reward = res.passed / res.total if res.total else 0.0
            r.state.simulations.append(
                Simulation(r.agent, r.program, reward, res.status, feedback_text(res), r.generation, r.prefix_depth)
            )
            self.solved = self.solved or reward >= 1.0

    @staticmethod
    def _score(action: Action) -> None:
        assert action.child is not None
        action.returns.append(action.child.value or 0.0)
        action.visits = action.child.visits = 1

    # --- pruning and refinement -----------------------------------------------------------

    def _weak(self, leaf: State, action: Action) -> bool:
        value = action.child.value if action.child else None
        return value is None or value < self.cfg.prune_threshold or value < (leaf.value or 0.0)

    async def _prune_and_refine(self, leaf: State, children: list[Action]) -> None:
        weak = [a for a in children if self._weak(leaf, a)]
        for a in weak:
            a.pruned = True
        if self.cfg.refine and weak and not (self.cfg.stop_on_solve and self.solved):
            refined = await asyncio.gather(*(self._refine(leaf, a) for a in weak))
            for a in refined:
                if a is not None and self._weak(leaf, a):
                    a.pruned = True

    async def _refine(self, leaf: State, action: Action) -> Action | None:
        agent = self.s.by_name[action.agent]
        if not agent.refines or action.child is None or not self._grant(agent, 1, "refine"):
            return None
        best = action.child.best_simulation()
        feedback = best.feedback if best else "No program could be written from this step."
        prop = await agent.refine(self.problem, list(leaf.thoughts), action.thought, feedback)
        if prop is None or not prop.text.strip():
            return None
        prop = self._clamp(prop)
        if any(prop.text == a.thought for a in leaf.children):
            return None
        new = self._attach(leaf, prop, agent.name, "refine", refined_from=action)
        new.feedback = feedback
        await self._simulate(new.child, self.s.agents, self.cfg.n_sim)  # type: ignore[arg-type]
        refresh_value(new.child)  # type: ignore[arg-type]
        self._score(new)
        return new

    # --- the answer -----------------------------------------------------------------------

    def _result(self) -> SearchResult:
        states = list(iter_states(self.root))
        placed = sorted(((sim, st) for st in states for sim in st.simulations), key=lambda p: p[0].generation)
        best_sim, best_state = None, None
        anytime = []
        for sim, st in placed:  # generation order: a tie never replaces the earlier program
            if best_sim is None or sim.reward > best_sim.reward:
                best_sim, best_state = sim, st
                anytime.append(AnytimePoint(generations=sim.generation, reward=sim.reward, agent=sim.agent,
                                            prefix_depth=sim.prefix_depth, program=sim.program))
        evaluations = [
            Evaluation(thoughts=list(st.thoughts), agent=sim.agent, program=sim.program, reward=sim.reward, status=sim.status)
            for st in states
            for sim in st.simulations
        ]
        solved = bool(best_sim and best_sim.reward >= 1.0)
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
            solved_public=solved,
            thoughts_by_agent=dict(self.proposed),
            generations_by_kind=dict(self.kinds),
            best_generation=best_sim.generation if best_sim else None,
            best_thought_agents=[s.parent.agent for s in path_to(best_state)[1:] if s.parent] if best_state else [],
            solved_by=("root" if best_sim.prefix_depth == 0 else "tree") if solved and best_sim else None,
            anytime=anytime,
            tree=tree_record(self.root, best_state),
        )


def step_preferences(states: Sequence[State]) -> list[PreferencePair]:
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
                    PreferencePair(
                        thoughts=list(st.thoughts),
                        chosen=good.thought,
                        rejected=bad.thought,
                        chosen_value=good.child.value,  # type: ignore[union-attr]
                        rejected_value=bad.child.value,  # type: ignore[union-attr]
                        chosen_agent=good.agent,
                        rejected_agent=bad.agent,
                    )
                )
    return pairs
