"""cost.py's worst case against real searches: reached exactly where the worst case happens,
never exceeded where it does not, capped by a generation budget."""

import asyncio

import pytest

from bdc_ray.boost import PromptBook, SearchConfig, worst_case_generations
from bdc_ray.boost.search import MCTreeOfAgents
from tests.boost.fakes import ContinuingAgent, FakeAgent, FakeExecutor, problem

UNSOLVABLE = problem(steps=("double", "add one", "square"))


def _thinkers() -> list[FakeAgent]:
    """Two instruct-like agents whose thoughts never repeat, all refinable into new ones."""
    return [
        FakeAgent("A", [("negate", 0.9), ("square", 0.8)], refinements={"negate": "r-negate", "square": "r-square"}),
        FakeAgent("B", [("double", 0.7), ("add one", 0.6)], refinements={"double": "r-double", "add one": "r-add"}),
    ]


def _spent(agents, **cfg):
    config = SearchConfig(**cfg)
    result = asyncio.run(MCTreeOfAgents(agents, FakeExecutor(), config).search(UNSOLVABLE.public_view()))
    return config, result


def test_one_rollout_where_every_child_is_refined_costs_exactly_the_worst_case():
    agents = _thinkers()
    config, result = _spent(agents, rollouts=1, width=2, n_sim=2, prune_threshold=1.0, stop_on_solve=False)
    bound = worst_case_generations(config, agents)
    assert sum(result.llm_generations.values()) == sum(sum(k.values()) for k in bound.values()) == 44
    for name, kinds in bound.items():
        assert result.llm_generations[name] == sum(kinds.values())
    assert result.generations_by_kind == {
        kind: sum(bound[a][kind] for a in bound) for kind in ("thought", "refine", "program")
    }
    assert bound["A"] == {"thought": 2, "continuation": 0, "refine": 2, "program": 2 + 2 * 2 * (2 + 2)}


@pytest.mark.parametrize("rollouts", [2, 4, 8])
def test_longer_searches_stay_under_the_worst_case(rollouts):
    for agents in (_thinkers(), [ContinuingAgent("C", [("double", 0.9), ("negate", 0.5)]), *_thinkers()[:1]]):
        config, result = _spent(agents, rollouts=rollouts, width=2, n_sim=2, prune_threshold=1.0, stop_on_solve=False,
                                cross_sim=1)
        bound = worst_case_generations(config, agents)
        for name, spent in result.llm_generations.items():
            assert spent <= sum(bound[name].values()), (name, result.generations_by_kind, bound)


def test_a_generation_budget_caps_the_worst_case_and_sets_it_without_a_rollout_cap():
    agents = _thinkers()
    capped = worst_case_generations(SearchConfig(rollouts=16, max_generations=100), agents)
    assert sum(sum(k.values()) for k in capped.values()) == pytest.approx(100)
    budget_only = worst_case_generations(SearchConfig(max_generations=64), agents)
    assert sum(sum(k.values()) for k in budget_only.values()) == pytest.approx(64)


def test_continuing_agents_write_no_thoughts_and_skip_the_root():
    agent = ContinuingAgent("C", [("double", 0.9)])
    bound = worst_case_generations(SearchConfig(rollouts=3, width=4, n_sim=2), [agent])
    assert bound == {"C": {"thought": 0, "continuation": 12, "refine": 0, "program": 0}}


def test_prompt_books_say_how_long_each_kind_of_generation_may_be():
    instruct = PromptBook(style="instruct", max_code_tokens=256).max_new_tokens()
    completion = PromptBook(style="completion", max_thought_tokens=48, max_code_tokens=256).max_new_tokens()
    assert (instruct["thought"], instruct["program"], instruct["refine"]) == (64, 1024, 96)
    assert (completion["thought"], completion["program"], completion["continuation"]) == (48, 256, 256)
    book = PromptBook(style="instruct", max_code_tokens=100)
    assert book.code(UNSOLVABLE, [], 1).sampling.max_new_tokens == book.max_new_tokens()["program"]
    assert book.propose(UNSOLVABLE, [], 3).sampling.max_new_tokens == 3 * book.max_new_tokens()["thought"]
