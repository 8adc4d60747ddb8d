import asyncio
import math

import pytest

from bdc_ray.boost.dedupe import merge_near_duplicates
from bdc_ray.boost.config import SearchConfig
from bdc_ray.boost.interfaces import Proposal
from bdc_ray.boost.search import HiddenTestsLeak, MCTreeOfAgents, last_lines
from bdc_ray.boost.tree import Action, State, backup, p_ucb, select
from tests.boost.fakes import FakeAgent, FakeExecutor, problem


def search(agents, prob=None, **cfg):
    ex = FakeExecutor()
    result = asyncio.run(MCTreeOfAgents(agents, ex, SearchConfig(**cfg)).search((prob or problem()).public_view()))
    return result, ex


# --- selection ---------------------------------------------------------------------------


def test_p_ucb_follows_the_design_formula():
    root = State(())
    a = Action("t", "A", prior=0.6, parent=root, returns=[0.3, 0.5], visits=2)
    n_parent, c_base, c = 7, 10.0, 4.0
    expected = 0.5 + (math.log((7 + 10 + 1) / 10) + 4) * 0.6 * math.sqrt(math.log(7)) / 3
    assert p_ucb(a, n_parent, c_base, c) == pytest.approx(expected)


def _child(parent, thought, prior, returns=(), visits=0, pruned=False):
    a = Action(thought, "A", prior, parent, returns=list(returns), visits=visits, pruned=pruned)
    a.child = State((*parent.thoughts, thought), parent=a)
    parent.children.append(a)
    return a


def descend(root, max_depth=4, k=1.0, alpha=0.0):
    """select() with widening off by default: one expansion per state, as the reference code."""
    return select(root, 10, 4, max_depth, k, alpha)


def test_selection_prefers_higher_q_then_prior_and_skips_pruned():
    root = State((), visits=5, expansions=1)
    low = _child(root, "low", 0.5, returns=[0.2], visits=1)
    high = _child(root, "high", 0.5, returns=[0.8], visits=1)
    assert descend(root) == (high.child, "expand")
    high.pruned = True
    assert descend(root) == (low.child, "expand")
    low.pruned = True
    assert descend(root) == (high.child, "expand")  # all pruned: the pruned ones are the last resort
    assert descend(root, alpha=0.5) == (root, "expand")  # unless the root may widen: new children first


def test_selection_explores_an_unvisited_high_prior_child():
    root = State((), visits=20, expansions=1)
    _child(root, "exploited", 0.1, returns=[0.5], visits=15)
    fresh = _child(root, "fresh", 0.9, returns=[0.3], visits=1)
    assert descend(root)[0] is fresh.child


def test_backup_appends_discounted_returns_and_counts_visits():
    root = State(())
    a = _child(root, "a", 0.5)
    b = _child(a.child, "b", 0.5)
    backup(b.child, 1.0, 0.9)
    assert b.returns == [1.0] and a.returns == [pytest.approx(0.9)]
    assert (root.visits, a.visits, b.visits, b.child.visits) == (1, 1, 1, 1)
    backup(b.child, 0.2, 0.9)
    assert b.q == 1.0  # max, not mean


# --- expansion, simulation, pruning, refinement -------------------------------------------


def test_every_agent_expands_and_duplicates_merge():
    a = FakeAgent("A", [("double", 0.4), ("negate", 0.3)])
    b = FakeAgent("B", [("Double.", 0.8), ("square", 0.3)])
    result, _ = search([a, b], rollouts=1, simulate_root=False, stop_on_solve=False, refine=False, width=2)
    assert a.calls["propose"] == b.calls["propose"] == 1
    first_level = [e.thoughts for e in result.evaluations if len(e.thoughts) == 1]
    assert sorted({t[0] for t in first_level}) == ["double", "negate", "square"]  # "Double." merged into "double"
    assert result.thoughts_by_agent == {"A": 2, "B": 1}


def test_similar_thoughts_are_merged_by_their_first_proposer():
    a = FakeAgent("A", [("double the value", 0.4)], merges_to={("double the value", "double the values"): "double"})
    b = FakeAgent("B", [("double the values", 0.6)])
    kwargs = dict(rollouts=1, simulate_root=False, stop_on_solve=False, refine=False, width=1, dedup_threshold=0.99)
    plain, _ = search([a, b], **kwargs)
    assert {e.thoughts[0] for e in plain.evaluations} == {"double the value", "double the values"}
    merged, _ = search([a, b], merge_threshold=0.8, **kwargs)
    assert {e.thoughts[0] for e in merged.evaluations} == {"double"}
    assert a.calls["merge"] == 1 and b.calls["merge"] == 0
    assert merged.llm_generations["A"] == 1 + 1 + 2  # propose, merge, programs of the one merged child


def test_merge_keeps_first_text_and_highest_prior():
    kept = merge_near_duplicates([("A", Proposal("Sort the list", 0.2)), ("B", Proposal("sort the list.", 0.9))], 0.9)
    assert kept == [("A", Proposal("Sort the list", 0.9))]


def test_simulation_value_is_mean_pass_rate_over_all_agents_programs():
    good = FakeAgent("A", [("double", 0.9)])
    half = FakeAgent("B", [])
    prob = problem(steps=("double",), xs_public=(0, 1))  # "ops:" passes x=0 only
    result, ex = search([good, half], prob, rollouts=1, n_sim=3, stop_on_solve=False, refine=False)
    root_evals = [e for e in result.evaluations if e.thoughts == []]
    assert len(root_evals) == 6 and all(e.reward == 0.5 for e in root_evals)
    child_evals = [e for e in result.evaluations if e.thoughts == ["double"]]
    assert {e.agent for e in child_evals} == {"A", "B"} and all(e.reward == 1.0 for e in child_evals)
    # generations are counted as asked: root 3+3, proposals 3+3, child 3+3
    assert result.llm_generations == {"A": 9, "B": 9}
    assert ex.runs == sum(result.sandbox_runs.values()) == 12
    assert result.best_thoughts == ["double"] and result.best_reward == 1.0


def test_weak_children_are_pruned_and_refined_from_feedback():
    agent = FakeAgent("A", [("negate", 0.9)], refinements={"negate": "double"})
    prob = problem(steps=("double",))
    result, _ = search([agent], prob, rollouts=1, refine=True, stop_on_solve=False, prune_threshold=0.5)
    assert agent.calls["refine"] == 1
    feedback = next(s for s in agent.seen if s.startswith("Status:"))
    assert "Expected: 2" in feedback and "Got: -1" in feedback  # the first public test, x=1
    refined = [e for e in result.evaluations if e.thoughts == ["double"]]
    assert refined and refined[0].reward == 1.0
    assert result.best_thoughts == ["double"] and result.solved_public


def test_no_refinement_is_paid_for_once_a_program_passed_and_the_search_stops():
    def agent():
        return FakeAgent("A", [("double", 0.9), ("negate", 0.5)], refinements={"negate": "square"})

    prob = problem(steps=("double",))
    kwargs = dict(rollouts=1, simulate_root=False, width=2, n_sim=1, prune_threshold=0.5)
    stopping, _ = search([a := agent()], prob, **kwargs)
    assert stopping.solved_public and a.calls["refine"] == 0 and "refine" not in stopping.generations_by_kind
    going, _ = search([b := agent()], prob, stop_on_solve=False, **kwargs)
    assert b.calls["refine"] == 1 and going.generations_by_kind["refine"] == 1


def test_a_child_worse_than_its_parent_is_pruned_even_above_the_threshold():
    agent = FakeAgent("A", [("add one", 0.9)], refinements={"add one": "double"})
    prob = problem(steps=("double",), xs_public=(0, 5, 6))  # root passes x=0: value 1/3
    result, _ = search([agent], prob, rollouts=1, stop_on_solve=False)
    assert agent.calls["refine"] == 1
    assert result.best_thoughts == ["double"]


def test_search_solves_two_step_problem_and_stops_on_solve():
    agent = FakeAgent("A", [("double", 0.9), ("add one", 0.8), ("square", 0.1)])
    result, _ = search([agent], rollouts=10, width=3)
    assert result.solved_public and result.best_reward == 1.0
    assert result.best_program == "ops:double,add one"
    assert result.rollouts < 10


def test_mutual_boosting_two_agents_solve_what_neither_solves_alone():
    # A knows only the first step, B only the second.
    def agents():
        return [FakeAgent("A", [("double", 0.9), ("negate", 0.5)]), FakeAgent("B", [("add one", 0.9), ("square", 0.5)])]

    a_alone, _ = search(agents()[:1], rollouts=8)
    b_alone, _ = search(agents()[1:], rollouts=8)
    both, _ = search(agents(), rollouts=8)
    assert not a_alone.solved_public and not b_alone.solved_public
    assert both.solved_public and both.best_program == "ops:double,add one"


# --- termination and budgets --------------------------------------------------------------


def test_depth_limit_is_respected():
    agent = FakeAgent("A", [("negate", 0.9), ("square", 0.8), ("add one", 0.7)])
    result, _ = search([agent], rollouts=12, max_depth=2, refine=False)
    assert result.tree_depth <= 2


def test_generation_budget_is_never_exceeded():
    a = FakeAgent("A", [("negate", 0.9), ("square", 0.8)])
    b = FakeAgent("B", [("double", 0.5), ("negate", 0.4)])
    for budget in (1, 5, 13, 40):
        result, _ = search([a, b], rollouts=50, max_generations=budget, stop_on_solve=False)
        assert sum(result.llm_generations.values()) <= budget


def test_rollout_budget_without_solution():
    agent = FakeAgent("A", [("negate", 0.9), ("square", 0.8)])
    result, _ = search([agent], rollouts=5, refine=False)
    assert result.rollouts == 5 and not result.solved_public


def test_step_preferences_pair_rising_with_falling_children():
    # root "ops:" passes x=0 only (1/3); "double" passes all, "add one" none
    agent = FakeAgent("A", [("double", 0.9), ("add one", 0.5)])
    prob = problem(steps=("double",), xs_public=(0, 5, 6))
    result, _ = search([agent], prob, rollouts=1, refine=False, stop_on_solve=False)
    assert {(p.chosen, p.rejected) for p in result.preferences} == {("double", "add one")}


# --- hidden tests -------------------------------------------------------------------------


def test_search_refuses_a_problem_with_hidden_tests():
    with pytest.raises(HiddenTestsLeak):
        asyncio.run(MCTreeOfAgents([FakeAgent("A", [])], FakeExecutor(), SearchConfig()).search(problem()))


def test_hidden_tests_never_reach_agents_or_rewards():
    prob = problem(xs_public=(1, 2), xs_hidden=(123457, 765433))
    hidden_values = {"123457", "765433", str(2 * 123457 + 1), str(2 * 765433 + 1)}
    agents = [FakeAgent("A", [("negate", 0.9), ("double", 0.3)], refinements={"negate": "square"}),
              FakeAgent("B", [("add one", 0.6)])]
    ex = FakeExecutor()
    asyncio.run(MCTreeOfAgents(agents, ex, SearchConfig(rollouts=6, stop_on_solve=False)).search(prob.public_view()))
    everything_seen = " ".join(s for a in agents for s in a.seen)
    assert not any(v in everything_seen for v in hidden_values)
    assert {t.args[0] for t in ex.seen_tests} == {1, 2}


def test_configuration_errors_are_clear():
    with pytest.raises(ValueError, match="at least one agent"):
        MCTreeOfAgents([], FakeExecutor(), SearchConfig())
    with pytest.raises(ValueError, match="unique"):
        MCTreeOfAgents([FakeAgent("A", []), FakeAgent("A", [])], FakeExecutor(), SearchConfig())
    with pytest.raises(ValueError):
        SearchConfig(width=0)


def test_feedback_keeps_whole_lines_from_the_end_of_a_traceback() -> None:
    trace = "Traceback (most recent call last):\n  File \"solution.py\", line 4, in f\n    return g()\nNameError: name 'g' is not defined\n"
    assert last_lines(trace, 1000) == trace.strip()
    assert last_lines(trace, 60) == "    return g()\nNameError: name 'g' is not defined"
    assert last_lines("x" * 50, 10) == "x" * 10  # one line longer than the limit: its end
