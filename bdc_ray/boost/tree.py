"""The search tree: states (problem + thoughts) joined by actions (one next thought each).

Values live on states (the mean public-test pass rate of the programs simulated from them);
returns live on actions (the best discounted value seen anywhere below), which is what P-UCB
exploits. Plain data and pure functions, so selection, widening, virtual loss and backup are
tested in isolation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ActionType = Literal["detail", "refine"]
Step = Literal["expand", "simulate"]


@dataclass
class Simulation:
    """One program written from a state, and how it did on the public tests.

    `generation` is the program's place in the problem's generation count (1-based: the budget
    spent when it was asked for, itself included), so the best program after any number of
    generations can be read off one run. `prefix_depth` is how many thoughts its prompt held: a
    continuation sampled from the parent follows the child's thought but was prompted with one
    thought fewer, and 0 means a plain sample (what best-of-N draws too).
    """

    agent: str
    program: str
    reward: float
    status: str
    feedback: str
    generation: int
    prefix_depth: int


@dataclass(eq=False)  # nodes are compared by identity: a tree holds cycles (parent <-> children)
class State:
    thoughts: tuple[str, ...]
    parent: "Action | None" = None
    children: list["Action"] = field(default_factory=list)
    visits: int = 0
    value: float | None = None
    simulations: list[Simulation] = field(default_factory=list)
    expansions: int = 0
    pending: int = 0
    """Rollouts in flight through this state (virtual loss): counted as visits that returned nothing."""

    @property
    def depth(self) -> int:
        return len(self.thoughts)

    def best_simulation(self) -> Simulation | None:
        return max(self.simulations, key=lambda s: s.reward, default=None)

    def open_children(self) -> list["Action"]:
        return [a for a in self.children if not a.pruned]


@dataclass(eq=False)
class Action:
    thought: str
    agent: str
    prior: float
    parent: State
    kind: ActionType = "detail"
    child: State | None = None
    visits: int = 0
    returns: list[float] = field(default_factory=list)
    pruned: bool = False
    refined_from: "Action | None" = None
    feedback: str | None = None
    """For a refinement: the execution feedback its proposer was asked to correct."""

    @property
    def q(self) -> float:
        return max(self.returns, default=0.0)


def refresh_value(state: State) -> None:
    """A state's value: the mean reward of the programs that follow its chain and were sampled
    here or in it: its own simulations, and the continuations sampled from its prompt that became
    its children's simulations (each is a sample from this state as much as from the child)."""
    rewards = [s.reward for s in state.simulations]
    rewards += [
        s.reward
        for a in state.children
        if a.child is not None
        for s in a.child.simulations
        if s.prefix_depth == state.depth
    ]
    state.value = sum(rewards) / len(rewards) if rewards else None


def p_ucb(action: Action, parent_visits: int, c_base: float, c: float) -> float:
    """P-UCB with a visit-dependent exploration weight (DESIGN.md section 2).

    Virtual loss: rollouts in flight below the action count as visits that returned 0, so both
    its exploitation term (Q scaled by visits / (visits + pending)) and its exploration term fall
    while they run; concurrent selections then spread over siblings.
    """
    pending = action.child.pending if action.child is not None else 0
    n = action.visits + pending
    q = action.q * action.visits / n if n else action.q
    n_parent = max(parent_visits, 1)
    weight = math.log((n_parent + c_base + 1) / c_base) + c
    return q + weight * action.prior * math.sqrt(math.log(n_parent)) / (1 + n)


def may_widen(state: State, k: float, alpha: float) -> bool:
    """Progressive widening: expand a state that has children again while expansions < k * N^alpha."""
    return state.expansions < k * max(state.visits + state.pending, 1) ** alpha


def select(root: State, c_base: float, c: float, max_depth: int, k: float, alpha: float) -> tuple[State, Step]:
    """Descend by P-UCB to the state a rollout works on, and what it does there.

    A state below `max_depth` is expanded when it has no child yet or may widen; otherwise the
    descent goes on through its open children, or through its pruned ones when every child is
    pruned (pruning ranks a child last, it does not make a state a dead end: re-expanding it at
    every rollout would spend the budget on the same proposals again). A state at `max_depth` is
    simulated again (re-simulation), so neither the depth limit nor an exhausted width ever
    leaves a rollout without work while budget remains.
    """
    node = root
    while True:
        if node.depth < max_depth and (not node.children or may_widen(node, k, alpha)):
            return node, "expand"
        options = node.open_children() or node.children
        if not options:
            return node, "simulate"
        parent_visits = node.visits + node.pending
        best = max(options, key=lambda a: p_ucb(a, parent_visits, c_base, c))
        assert best.child is not None
        node = best.child


def path_to(state: State) -> list[State]:
    """The states from the root down to `state`, both included."""
    path = [state]
    while path[-1].parent is not None:
        path.append(path[-1].parent.parent)
    return path[::-1]


def add_pending(state: State, delta: int) -> None:
    """Apply (+1) or undo (-1) one rollout's virtual loss on every state of its path."""
    for node in path_to(state):
        node.pending += delta


def backup(leaf: State, value: float, discount: float) -> None:
    """Append the discounted return to every action on the path to `leaf`; count visits."""
    leaf.visits += 1
    node, ret = leaf, value
    while node.parent is not None:
        action = node.parent
        action.returns.append(ret)
        action.visits += 1
        node = action.parent
        node.visits += 1
        ret *= discount


def iter_states(root: State):
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(a.child for a in reversed(node.children) if a.child is not None)


TREE_FORMAT = 1


def tree_nodes(root: State) -> list[dict[str, Any]]:
    """The tree as flat JSON-ready rows, one per state, ids in `iter_states` order (root = 0).

    A row holds what the action into the state carried (thought, proposer, prior, detail or
    refine, the feedback a refinement answered, pruned, q) and what the state found (visits,
    value, every simulated program with its public-test result), with parents and refinement
    sources as ids: no thought chain is repeated per node, so a trace stays linear in the tree.
    """
    states = list(iter_states(root))
    ids = {id(state): i for i, state in enumerate(states)}
    rows = []
    for i, state in enumerate(states):
        action = state.parent
        source = action.refined_from if action else None
        rows.append(
            {
                "id": i,
                "parent": ids[id(action.parent)] if action else None,
                "thought": action.thought if action else None,
                "agent": action.agent if action else None,
                "prior": action.prior if action else None,
                "kind": action.kind if action else "root",
                "refined_from": ids.get(id(source.child)) if source and source.child else None,
                "feedback": action.feedback if action else None,
                "pruned": action.pruned if action else False,
                "visits": state.visits,
                "value": state.value,
                "q": action.q if action else None,
                "simulations": [asdict(sim) for sim in state.simulations],
            }
        )
    return rows


def tree_record(root: State, best: State | None) -> dict[str, Any]:
    """What a trace keeps of the searched tree: its rows and the id of the best program's state."""
    nodes = tree_nodes(root)
    best_id = next((i for i, state in enumerate(iter_states(root)) if state is best), None)
    return {"format": TREE_FORMAT, "best": best_id, "nodes": nodes}
