"""Which training tasks a tiny model sees."""

from __future__ import annotations

from bdc_ray.problems.synth import generate_suite
from bdc_ray.tiny import select_problems
from tests.tiny.conftest import SMALL


def test_subsets_are_per_family_and_seeded() -> None:
    train = generate_suite(SMALL.synth).train
    half = select_problems(train, ["arith", "io"], 0.5, seed=0)
    assert sorted({p.family for p in half}) == ["arith", "io"] and len(half) == 30
    assert [p.id for p in half] == [p.id for p in select_problems(train, ["arith", "io"], 0.5, seed=0)]
    assert {p.id for p in half} != {p.id for p in select_problems(train, ["arith", "io"], 0.5, seed=1)}
