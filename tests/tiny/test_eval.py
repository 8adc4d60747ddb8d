"""A tiny model scored per family in the real sandbox, prompted as it was trained."""

from __future__ import annotations

from pathlib import Path

from bdc_ray.problems.synth import format_prompt, generate_suite, training_text
from bdc_ray.tiny import evaluate_tiny, tiny_prompt
from tests.tiny.conftest import SMALL


def test_evaluate_tiny_scores_per_family(built: Path) -> None:
    problems = generate_suite(SMALL.synth.model_copy(update={"families": ["arith", "io"]})).heldout
    result = evaluate_tiny(built, problems, samples=2, max_new_tokens=48)
    assert result.k == 2 and set(result.by_family) == {"arith", "io"}
    assert result.overall.problems == 2 and result.generated_tokens > 0
    for scores in [result.overall, *result.by_family.values()]:
        assert 0 <= scores.greedy_pass_at_1 <= 1 and 0 <= scores.pass_at_k <= 1


def test_prompt_with_thoughts_is_a_prefix_of_the_training_text() -> None:
    problem = generate_suite(SMALL.synth).train[0]
    assert tiny_prompt(problem) == format_prompt(problem)
    with_thoughts = tiny_prompt(problem, with_thoughts=True)
    assert with_thoughts.endswith("\n# " + problem.thoughts[-1] + "\n")
    assert training_text(problem).startswith(with_thoughts)
