"""Completion-style agents in the tree: one sampled continuation is a child's thought AND its program.

Deterministic fake agents (tests/boost/fakes.py); the same search core as the paper loop.
"""

from __future__ import annotations

import asyncio

import pytest

from bdc_ray.boost.config import SearchConfig
from bdc_ray.boost.records import trace_record
from bdc_ray.boost.search import MCTreeOfAgents, ProblemSearch
from tests.boost.fakes import ContinuingAgent, FakeAgent, FakeExecutor, problem

WRONG = [("negate", 1.0), ("square", 1.0)]


def run(agents, prob=None, **cfg):
    """The result and the searched tree (`ProblemSearch.root`)."""
    searcher = MCTreeOfAgents(agents, FakeExecutor(), SearchConfig(**cfg))
    search = ProblemSearch(searcher, (prob or problem()).public_view())
    return asyncio.run(search.execute()), search.root


def children(state):
    return {a.thought: a for a in state.children}


def test_continuations_that_start_alike_merge_into_one_child_with_their_share_as_prior():
    agent = ContinuingAgent("A", [("double", 1.0), ("double", 1.0), ("negate", 1.0)])
    prob = problem(steps=("double",), xs_public=(0, 1, 2))  # "ops:negate" passes x=0 only
    result, root = run([agent], prob, rollouts=1, width=3, stop_on_solve=False)
    kids = children(root)
    assert set(kids) == {"double", "negate"}
    assert kids["double"].prior == pytest.approx(2 / 3) and kids["negate"].prior == pytest.approx(1 / 3)
    # each continuation's program is its child's simulation, at no generation beyond the sample
    double = kids["double"].child.simulations
    assert [(s.program, s.generation, s.prefix_depth) for s in double] == [("ops:double", 1, 0), ("ops:double", 2, 0)]
    assert [s.generation for s in kids["negate"].child.simulations] == [3]
    assert result.llm_generations == {"A": 3} and result.generations_by_kind == {"continuation": 3}
    assert result.sandbox_runs == {"A": 3}
    assert agent.calls["continue_from"] == 1 and agent.calls["propose"] == agent.calls["write_code"] == 0
    # a child's value is the mean of its programs; the root's, of every sample drawn from it
    assert (kids["double"].child.value, kids["negate"].child.value) == (1.0, pytest.approx(1 / 3))
    assert root.value == pytest.approx((1 + 1 + 1 / 3) / 3)


def test_a_sample_that_goes_straight_to_code_simulates_the_state_itself():
    agent = ContinuingAgent("A", [(None, 1.0), ("double", 1.0)])
    _, root = run([agent], problem(steps=("double",)), rollouts=1, width=2, stop_on_solve=False)
    assert [(s.program, s.prefix_depth) for s in root.simulations] == [("ops:", 0)]
    assert list(children(root)) == ["double"]


def test_a_one_agent_tree_spends_every_generation_on_a_program():
    agent = ContinuingAgent("A", WRONG + [("add one", 1.0)])
    result, _ = run([agent], max_generations=23, width=2, max_depth=2)
    assert not result.solved_public
    assert sum(result.llm_generations.values()) == sum(result.sandbox_runs.values()) == 23
    assert set(result.generations_by_kind) <= {"continuation", "program"}


def test_mutual_boosting_one_agent_continues_the_other_agents_prefix():
    def agents():
        return [ContinuingAgent("A", [("double", 1.0)]), ContinuingAgent("B", [("add one", 1.0)])]

    a_alone, _ = run(agents()[:1], max_generations=16, width=2)
    b_alone, _ = run(agents()[1:], max_generations=16, width=2)
    both, _ = run(agents(), max_generations=16, width=2)
    assert not a_alone.solved_public and not b_alone.solved_public
    assert both.solved_public and both.best_program == "ops:double,add one"
    assert both.best_thoughts == ["double", "add one"] and both.best_thought_agents == ["A", "B"]
    assert both.best_agent == "B" and both.solved_by == "tree"
    assert both.anytime[-1].generations == both.best_generation <= 16


def test_solved_by_root_when_a_plain_sample_passes():
    agent = ContinuingAgent("A", [("negate", 1.0), ("double", 1.0)])
    result, _ = run([agent], problem(steps=("double",)), max_generations=8, width=2)
    assert result.solved_public and result.solved_by == "root"
    assert result.best_thoughts == ["double"] and result.best_generation == 2  # the second plain sample


def test_cross_simulation_by_the_other_agents_is_configurable():
    def agents():
        return [ContinuingAgent("A", [("double", 1.0)]), ContinuingAgent("B", [("negate", 1.0)])]

    plain, root = run(agents(), rollouts=1, width=1, stop_on_solve=False)
    assert [s.agent for s in children(root)["double"].child.simulations] == ["A"]
    crossed, root = run(agents(), rollouts=1, width=1, stop_on_solve=False, cross_sim=2)
    assert [s.agent for s in children(root)["double"].child.simulations] == ["A", "B", "B"]
    assert [s.agent for s in children(root)["negate"].child.simulations] == ["B", "A", "A"]
    assert crossed.generations_by_kind == {"continuation": 2, "program": 4}
    assert crossed.llm_generations == {"A": 3, "B": 3}


def test_a_thought_both_agents_sample_gets_no_cross_simulation():
    agents = [ContinuingAgent("A", [("double", 1.0)]), ContinuingAgent("B", [("double", 1.0)])]
    result, root = run(agents, rollouts=1, width=1, stop_on_solve=False, cross_sim=2)
    assert [s.agent for s in children(root)["double"].child.simulations] == ["A", "B"]
    assert result.generations_by_kind == {"continuation": 2}
    assert result.thoughts_by_agent == {"A": 1}  # the first sampler proposes the merged child


def test_bare_thought_agents_keep_the_paper_loop_beside_a_continuing_agent():
    thinker = FakeAgent("I", [("square", 0.6)], refinements={"square": "double"})
    sampler = ContinuingAgent("C", [("negate", 1.0)])
    result, root = run([thinker, sampler], problem(steps=("double",)), rollouts=1, width=1, n_sim=2,
                       stop_on_solve=False, prune_threshold=0.5)
    kids = children(root)
    # the root is simulated by the thinker only: the sampler's first expansion is its plain samples
    assert {s.agent for s in root.simulations} == {"I"}
    # a bare thought is simulated by every agent, n_sim each; the sampled one by its own program
    assert sorted(s.agent for s in kids["square"].child.simulations) == ["C", "C", "I", "I"]
    assert [s.agent for s in kids["negate"].child.simulations] == ["C"]
    # the thinker refines its pruned thought from the feedback; the sampler cannot, and is not asked
    assert kids["square"].pruned and thinker.calls["refine"] == 1 and sampler.calls["refine"] == 0
    assert kids["double"].kind == "refine" and kids["double"].child.value == 1.0
    assert result.generations_by_kind == {"program": 2 + 4 + 4, "thought": 1, "continuation": 1, "refine": 1}


def test_continuations_off_makes_a_continuing_agent_propose_bare_thoughts():
    agent = ContinuingAgent("A", [("double", 0.7)])
    result, root = run([agent], problem(steps=("double",)), rollouts=1, width=1, continuations=False)
    assert agent.calls["continue_from"] == 0 and agent.calls["propose"] == 1
    assert result.generations_by_kind == {"program": 4, "thought": 1}  # root 2, proposal 1, child 2


def test_the_trace_record_keeps_root_or_tree_rollouts_depth_agents_and_the_anytime_list():
    agents = [ContinuingAgent("A", [("double", 1.0)]), ContinuingAgent("B", [("add one", 1.0)])]
    prob = problem()
    result, _ = run(agents, prob, max_generations=16, width=2)
    record = trace_record(prob, result, None, 0.5).model_dump(mode="json")
    assert record["solved_by"] == "tree" and record["rollouts"] == result.rollouts >= 2
    assert record["tree_depth"] == 2 and record["best_thought_agents"] == ["A", "B"]
    assert record["generations_by_kind"] == result.generations_by_kind
    points = record["anytime"]
    assert [p["generations"] for p in points] == sorted(p["generations"] for p in points)
    assert [p["reward"] for p in points] == sorted(p["reward"] for p in points)
    assert points[-1]["program"] == record["best_program"] and points[-1]["reward"] == 1.0
