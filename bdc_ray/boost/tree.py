"""The search tree: states (problem + thoughts) joined by actions (one next thought each).

Values live on states (the mean public-test pass rate of the programs simulated from them);
returns live on actions (the best discounted value seen anywhere below), which is what P-UCB
exploits. Plain data and pure functions, so selection and backup are tested in isolation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ActionType = Literal["detail", "refine"]


@dataclass
class Simulation:
    """One program written from a state, and how it did on the public tests."""

    agent: str
    program: str
    reward: float
    status: str
    feedback: str


@dataclass
class State:
    thoughts: tuple[str, ...]
    parent: "Action | None" = None
    children: list["Action"] = field(default_factory=list)
    visits: int = 0
    value: float | None = None
    simulations: list[Simulation] = field(default_factory=list)
    expansions: int = 0

    @property
    def depth(self) -> int:
        return len(self.thoughts)

    def best_simulation(self) -> Simulation | None:
        return max(self.simulations, key=lambda s: s.reward, default=None)

    def open_children(self) -> list["Action"]:
        return [a for a in self.children if not a.pruned]


@dataclass
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


def p_ucb(action: Action, parent_visits: int, c_base: float, c: float) -> float:
    """P-UCB with a visit-dependent exploration weight (DESIGN.md section 2)."""
    n_parent = max(parent_visits, 1)
    weight = math.log((n_parent + c_base + 1) / c_base) + c
    return action.q + weight * action.prior * math.sqrt(math.log(n_parent)) / (1 + action.visits)


def select_leaf(root: State, c_base: float, c: float) -> State:
    """Descend by P-UCB through open (unpruned) children until a state without any."""
    node = root
    while True:
        options = node.open_children()
        if not options:
            return node
        best = max(options, key=lambda a: p_ucb(a, node.visits, c_base, c))
        assert best.child is not None
        node = best.child


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
