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


def test_family_weights_set_each_familys_share() -> None:
    train = generate_suite(SMALL.synth).train
    unweighted = select_problems(train, None, 1.0, seed=0)
    assert select_problems(train, None, 1.0, seed=0, weights={}) == unweighted
    weighted = select_problems(train, None, 1.0, seed=0, weights={"arith": 4.0, "io": 1.0})
    counts = {f: sum(p.family == f for p in weighted) for f in ("arith", "io", "list")}
    assert counts == {"arith": 30, "io": 8, "list": 8}  # 30 tasks each: heaviest all, weight 1 a quarter
