"""The searched tree as a trace keeps it (tree_nodes / tree_record): exact rows, and a real search's tree."""

import asyncio

from bdc_ray.boost.config import SearchConfig
from bdc_ray.boost.records import trace_record
from bdc_ray.boost.search import MCTreeOfAgents
from bdc_ray.boost.tree import Action, Simulation, State, tree_nodes, tree_record
from tests.boost.fakes import FakeAgent, FakeExecutor, problem


def _attach(parent: State, thought: str, agent: str, **fields) -> Action:
    action = Action(thought, agent, 0.7, parent, **fields)
    action.child = State((*parent.thoughts, thought), parent=action)
    parent.children.append(action)
    return action


def test_rows_of_a_hand_built_tree():
    root = State((), visits=3, value=0.0)
    root.simulations.append(Simulation("A", "ops:", 0.0, "failed", "Status: failed.", 1, 0))
    weak = _attach(root, "negate", "A", pruned=True, visits=1, returns=[0.0])
    weak.child.value, weak.child.visits = 0.0, 1
    good = _attach(root, "double", "B", kind="refine", refined_from=weak, feedback="Expected: 2", visits=2,
                   returns=[1.0, 0.9])
    good.child.value, good.child.visits = 1.0, 2
    good.child.simulations.append(Simulation("B", "ops:double", 1.0, "passed", "All public tests passed.", 2, 1))
    _attach(good.child, "add one", "A")  # never simulated: no value, no simulations

    rows = tree_nodes(root)
    assert [(r["id"], r["parent"], r["thought"]) for r in rows] == [
        (0, None, None), (1, 0, "negate"), (2, 0, "double"), (3, 2, "add one"),
    ]
    assert rows[0] == {
        "id": 0, "parent": None, "thought": None, "agent": None, "prior": None, "kind": "root",
        "refined_from": None, "feedback": None, "pruned": False, "visits": 3, "value": 0.0, "q": None,
        "simulations": [{"agent": "A", "program": "ops:", "reward": 0.0, "status": "failed",
                         "feedback": "Status: failed.", "generation": 1, "prefix_depth": 0}],
    }
    assert rows[1]["pruned"] and rows[1]["kind"] == "detail" and rows[1]["q"] == 0.0
    assert rows[2]["kind"] == "refine" and rows[2]["refined_from"] == 1 and rows[2]["feedback"] == "Expected: 2"
    assert rows[2]["q"] == 1.0 and rows[2]["agent"] == "B" and rows[2]["visits"] == 2
    assert rows[3]["value"] is None and rows[3]["simulations"] == [] and rows[3]["q"] == 0.0
    assert tree_record(root, good.child) == {"format": 1, "best": 2, "nodes": rows}
    assert tree_record(root, None)["best"] is None


def _chain(rows, node_id):
    out = []
    while rows[node_id]["parent"] is not None:
        out.append(rows[node_id]["thought"])
        node_id = rows[node_id]["parent"]
    return out[::-1]


def test_a_real_search_keeps_its_tree_with_refinements_and_the_best_path():
    a = FakeAgent("A", [("negate", 0.9), ("square", 0.4)], refinements={"negate": "double"})
    b = FakeAgent("B", [("add one", 0.8)])
    prob = problem(steps=("double",))
    executor = FakeExecutor()
    search = MCTreeOfAgents([a, b], executor, SearchConfig(rollouts=4, width=2, n_sim=1, stop_on_solve=False,
                                                                   prune_threshold=0.5))
    result = asyncio.run(search.search(prob.public_view()))
    record = trace_record(prob, result, None, 0.1).model_dump(mode="json")  # what a trace file holds
    tree = record["tree"]
    rows = tree["nodes"]
    assert len(rows) == result.tree_size and [r["id"] for r in rows] == list(range(len(rows)))
    # Every evaluated program sits on the node whose thought chain it was written from.
    placed = [{"thoughts": _chain(rows, r["id"]), "agent": s["agent"], "program": s["program"],
               "reward": s["reward"], "status": s["status"]} for r in rows for s in r["simulations"]]
    assert placed == record["evaluations"]
    # The refinement names the pruned thought it replaced and the feedback its proposer was shown.
    refined = [r for r in rows if r["kind"] == "refine"]
    assert refined and all(r["thought"] == "double" and r["agent"] == "A" for r in refined)
    for r in refined:
        source = rows[r["refined_from"]]
        assert source["thought"] == "negate" and source["pruned"] and source["parent"] == r["parent"]
        assert r["feedback"] in a.seen and "Got:" in r["feedback"]
    # The best node's chain and programs are the search's answer; its path runs from the root.
    best = rows[tree["best"]]
    assert _chain(rows, best["id"]) == record["best_thoughts"] == ["double"]
    assert record["best_program"] in [s["program"] for s in best["simulations"]]
    assert best["value"] == 1.0 and rows[0]["visits"] == record["rollouts"] + 1  # + the root's own simulation
