"""The search's budget, anytime, widening, virtual-loss and determinism properties over fake agents.

Every agent set runs the same properties: bare-thought agents (the paper loop with refinement and
merging), continuing agents (completion style), and one of each.
"""

from __future__ import annotations

import asyncio

import pytest

from bdc_ray.boost.config import SearchConfig
from bdc_ray.boost.search import MCTreeOfAgents, ProblemSearch
from bdc_ray.boost.tree import Action, State, add_pending, iter_states, may_widen, select
from tests.boost.fakes import ContinuingAgent, FakeAgent, FakeExecutor, InFlight, SampledAgent, problem

UNSOLVABLE = problem(steps=("double", "double", "double", "add one"))
# Two steps in this order; the right first step alone passes one test of four.
PARTIAL = problem(steps=("add one", "double"), xs_public=(-1, 0, 1, 2))


def thinkers():
    return [FakeAgent("A", [("negate", 0.9), ("double", 0.6), ("square", 0.5)], refinements={"negate": "add one"},
                      merges_to={("square", "squares"): "square it"}),
            FakeAgent("B", [("add one", 0.7), ("squares", 0.4), ("double", 0.3)])]


def samplers(seed=0):
    ideas = [("double", 3.0), ("add one", 2.0), ("square", 1.0), ("negate", 1.0), (None, 0.5)]
    return [SampledAgent("A", ideas, seed=seed), SampledAgent("B", ideas[::-1], seed=seed + 100, slip=0.5)]


def mixed():
    return [FakeAgent("A", [("double", 0.6), ("negate", 0.5)], refinements={"negate": "add one"}),
            ContinuingAgent("B", [("add one", 1.0), ("square", 1.0), (None, 1.0)])]


AGENT_SETS = {"thinkers": thinkers, "samplers": samplers, "mixed": mixed}


def run(agents, prob, **cfg):
    searcher = MCTreeOfAgents(agents, FakeExecutor(), SearchConfig(**cfg))
    search = ProblemSearch(searcher, prob.public_view())
    return asyncio.run(search.execute()), search.root


def spent(result) -> int:
    assert sum(result.generations_by_kind.values()) == sum(result.llm_generations.values())
    return sum(result.llm_generations.values())


@pytest.mark.parametrize("parallel", [1, 3])
@pytest.mark.parametrize("agents", AGENT_SETS)
def test_the_budget_is_never_exceeded_and_fully_spent_when_unsolved(agents, parallel):
    for budget in (1, 2, 5, 13, 40):
        for depth in (1, 3):
            result, root = run(AGENT_SETS[agents](), UNSOLVABLE, max_generations=budget, width=2, n_sim=2,
                               max_depth=depth, parallel_rollouts=parallel, merge_threshold=0.7, cross_sim=1)
            assert not result.solved_public
            assert spent(result) == budget, (budget, depth, result.generations_by_kind)
            assert all(st.pending == 0 for st in iter_states(root))  # every virtual loss undone


@pytest.mark.parametrize("agents", AGENT_SETS)
def test_a_solved_problem_stops_within_budget(agents):
    for budget in (3, 17, 60):
        result, _ = run(AGENT_SETS[agents](), problem(), max_generations=budget, width=2, parallel_rollouts=2)
        assert spent(result) <= budget
        if result.solved_public:
            assert result.anytime[-1].reward == 1.0


def test_neither_the_depth_limit_nor_a_narrow_width_ends_the_search_early():
    agent = ContinuingAgent("A", [("negate", 1.0)])  # one idea: the width is exhausted after one child
    result, root = run([agent], UNSOLVABLE, max_generations=30, width=1, max_depth=1)
    assert spent(result) == 30 and result.tree_depth == 1
    assert result.generations_by_kind["program"] > 0  # the deepest state was simulated again
    assert len(root.children) == 1 and result.rollouts > 1


def chosen_at(result, g):
    """The chosen program after g generations, read off the anytime list."""
    points = [p for p in result.anytime if p.generations <= g]
    return (points[-1].program, points[-1].reward, points[-1].generations) if points else ("", 0.0, None)


@pytest.mark.parametrize("parallel", [1, 3])
@pytest.mark.parametrize("agents", AGENT_SETS)
def test_anytime_the_best_after_g_generations_does_not_depend_on_the_total_budget(agents, parallel):
    full_budget = 30
    kwargs = dict(width=2, n_sim=1, max_depth=3, parallel_rollouts=parallel, stop_on_solve=False)
    full, _ = run(AGENT_SETS[agents](), PARTIAL, max_generations=full_budget, **kwargs)
    assert len(full.anytime) >= 2  # the curve moves, so the comparison means something
    for b in range(1, full_budget + 1):
        short, _ = run(AGENT_SETS[agents](), PARTIAL, max_generations=b, **kwargs)
        assert (short.best_program, short.best_reward, short.best_generation) == chosen_at(full, b), b
        assert short.anytime == [p for p in full.anytime if p.generations <= b]


@pytest.mark.parametrize("parallel", [1, 3])
def test_the_same_seed_gives_the_same_search(parallel):
    kwargs = dict(max_generations=40, width=3, n_sim=1, parallel_rollouts=parallel, stop_on_solve=False, cross_sim=1)
    first, _ = run(samplers(seed=7), PARTIAL, **kwargs)
    again, _ = run(samplers(seed=7), PARTIAL, **kwargs)
    other, _ = run(samplers(seed=8), PARTIAL, **kwargs)
    assert first.model_dump() == again.model_dump()
    assert first.evaluations != other.evaluations


# --- widening and virtual loss ----------------------------------------------------------


def _child(parent, thought, q, visits=1, prior=0.5):
    action = Action(thought, "A", prior, parent, returns=[q], visits=visits)
    action.child = State((*parent.thoughts, thought), parent=action, visits=visits)
    parent.children.append(action)
    return action


def test_progressive_widening_expands_a_state_again_as_its_visits_grow():
    root = State((), visits=4, expansions=1)
    kid = _child(root, "a", 0.5)
    assert may_widen(root, 1.0, 0.5)  # 1 < 1 * 4 ** 0.5
    assert select(root, 10, 4, 4, 1.0, 0.5) == (root, "expand")
    root.expansions = 2
    assert select(root, 10, 4, 4, 1.0, 0.5) == (kid.child, "expand")
    root.expansions = 1
    assert select(root, 10, 4, 4, 1.0, 0.0) == (kid.child, "expand")  # alpha 0: one expansion per state
    assert select(root, 10, 4, 1, 1.0, 0.0) == (kid.child, "simulate")  # at the depth limit: re-simulation


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_widening_in_a_search(alpha):
    agent = ContinuingAgent("A", [("negate", 1.0), ("square", 1.0)] + [(f"plan {i}", 1.0) for i in range(10)])
    result, root = run([agent], UNSOLVABLE, max_generations=40, width=1, max_depth=3, widen_alpha=alpha)
    assert spent(result) == 40
    if alpha == 0.0:
        assert root.expansions == 1 and len(root.children) == 1
    else:
        assert 1 < root.expansions <= root.visits ** alpha + 1
        assert len(root.children) == root.expansions  # each expansion brought a new first step


def test_virtual_loss_sends_a_concurrent_selection_elsewhere_and_is_undone():
    root = State((), visits=2, expansions=1)
    good = _child(root, "good", 0.8)
    other = _child(root, "other", 0.5)
    assert select(root, 10, 4, 4, 1.0, 0.0)[0] is good.child
    add_pending(good.child, +1)  # a rollout is in flight below "good"
    assert (root.pending, good.child.pending, other.child.pending) == (1, 1, 0)
    assert select(root, 10, 4, 4, 1.0, 0.0)[0] is other.child
    add_pending(good.child, -1)
    assert select(root, 10, 4, 4, 1.0, 0.0)[0] is good.child and root.pending == 0


@pytest.mark.parametrize("agents", ["thinkers", "samplers"])
def test_parallel_rollouts_keep_several_agent_calls_in_flight_on_one_problem(agents):
    peaks = {}
    for parallel in (1, 4):
        team = AGENT_SETS[agents]()[:1]
        shared = InFlight()
        for agent in team:
            agent.delay_s, agent.in_flight = 0.002, shared
        result, root = run(team, UNSOLVABLE, max_generations=60, width=2, n_sim=1, parallel_rollouts=parallel)
        assert spent(result) == 60 and all(st.pending == 0 for st in iter_states(root))
        peaks[parallel] = shared.peak
    assert peaks[4] > peaks[1]
    if agents == "samplers":
        assert peaks[1] == 1  # one rollout at a time: one call (bare thoughts' children are simulated together)


def test_rollouts_is_a_cap_only_when_asked_for():
    assert SearchConfig().rollouts == 16 and SearchConfig().max_generations is None
    assert SearchConfig(max_generations=8).rollouts is None
    assert SearchConfig(max_generations=8, rollouts=3).rollouts == 3
    again = SearchConfig.model_validate(SearchConfig(max_generations=8).model_dump())
    assert again == SearchConfig(max_generations=8)  # what settings.json records reads back the same
    result, _ = run([ContinuingAgent("A", [("negate", 1.0)])], UNSOLVABLE, max_generations=50, rollouts=3, width=1)
    assert result.rollouts == 3 and spent(result) == 3
    with pytest.raises(ValueError, match="rollout cap or a generation budget"):
        SearchConfig(rollouts=None)
    for bad in ({"parallel_rollouts": 0}, {"widen_alpha": 1.5}, {"widen_k": 0}, {"cross_sim": -1}):
        with pytest.raises(ValueError):
            SearchConfig(**bad)
