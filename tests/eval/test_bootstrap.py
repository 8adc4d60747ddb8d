"""Paired bootstrap: the interval covers the mean, tightens with more problems, and is deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from bdc_ray.eval.bootstrap import paired_bootstrap


def test_interval_brackets_the_mean_and_is_deterministic():
    diffs = [1, 0, 0, 1, -1, 1, 0, 1, 0, 0]
    a, b = paired_bootstrap(diffs, seed=3), paired_bootstrap(diffs, seed=3)
    assert a == b and a.mean == pytest.approx(0.3) and a.low <= a.mean <= a.high and a.low < a.high


def test_a_constant_difference_has_no_width_and_noise_narrows_with_more_problems():
    assert paired_bootstrap([0.5] * 20).low == paired_bootstrap([0.5] * 20).high == 0.5
    rng = np.random.default_rng(0)
    few = paired_bootstrap(rng.choice([-1, 0, 1], size=30), resamples=2000)
    many = paired_bootstrap(rng.choice([-1, 0, 1], size=3000), resamples=2000)
    assert many.high - many.low < (few.high - few.low) / 5


def test_coverage_of_a_known_mean():
    """About 95% of intervals from fresh samples of a +0.2 difference contain 0.2."""
    rng = np.random.default_rng(1)
    hits = [paired_bootstrap(rng.choice([0, 1, 0, 0, 0], size=100), resamples=1000, seed=i) for i in range(200)]
    share = np.mean([i.low <= 0.2 <= i.high for i in hits])
    assert 0.9 <= share <= 0.99, share


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="non-empty"):
        paired_bootstrap([])
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap([1.0], level=1.0)
