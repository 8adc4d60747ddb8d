"""Which problems a Boost stage searches when it may not search them all."""

from bdc_ray.boost.stage import first_per_group
from bdc_ray.problems.synth import SynthConfig, generate_suite


def test_a_limited_stage_takes_every_family_in_turn():
    train = generate_suite(SynthConfig(train_per_family=5, heldout_per_family=0, heldout_comp_per_family=0)).train
    chosen = first_per_group(train, 8)
    families = [p.family for p in chosen]
    assert families[:6] == ["arith", "string", "list", "count", "branch", "io"]  # the suite's family order
    assert families[6:] == ["arith", "string"]
    assert [p.id for p in chosen if p.family == "arith"] == [p.id for p in train if p.family == "arith"][:2]
    assert first_per_group(train, None) == train and first_per_group(train, 1000) == train
