"""HumanEval (openai/human-eval): the model continues the prompt, `check(entry_point)` judges.

The whole `test` field is one assertion test, so `split_tests` puts it on the hidden side and
HumanEval problems have no public tests: the benchmark has nothing smaller to hand out.
"""

from __future__ import annotations

from typing import Any

from bdc_ray.problems.formats.common import require, text
from bdc_ray.problems.split import split_tests
from bdc_ray.problems.types import AssertTest, Problem

NAME = "humaneval"
KEYS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")


def matches(record: dict[str, Any]) -> bool:
    return all(k in record for k in KEYS)


def to_problem(record: dict[str, Any]) -> Problem:
    require(record, *KEYS)
    task_id = str(record["task_id"])
    entry_point = text(record, "entry_point")
    test = check_test(text(record, "test"), entry_point)
    public, hidden = split_tests(task_id, [test])
    return Problem(
        id=task_id,
        source=NAME,
        prompt=text(record, "prompt"),
        public_tests=public,
        hidden_tests=hidden,
        entry_point=entry_point,
        completion_mode="append",
        reference_solutions=[text(record, "canonical_solution")],
    )


def check_test(test: str, entry_point: str) -> AssertTest:
    """HumanEval's `test` field (a `check(candidate)` function) as one assertion test on `entry_point`."""
    return AssertTest(code=test + f"\ncheck({entry_point})\n", source=NAME)
