"""Paired bootstrap intervals for the difference of two methods measured on the same problems.

Comparisons of methods here are paired: every method solves the same problems (under the same
sampling seeds), so the unit resampled is the problem and its per-problem difference keeps the
pairing (a hard problem is hard for both). Resampling the problems, not the seeds, is what says
whether a gap would survive another draw of problems; the spread over seeds is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A mean and its percentile bootstrap interval, in the units of the differences."""

    mean: float
    low: float
    high: float

    def scaled(self, factor: float) -> "Interval":
        return Interval(self.mean * factor, self.low * factor, self.high * factor)


def paired_bootstrap(
    differences: Sequence[float], resamples: int = 10_000, level: float = 0.95, seed: int = 0
) -> Interval:
    """The mean of per-problem differences (method A minus method B, each problem's own, e.g.
    averaged over seeds) and the central `level` percentile interval of the means of `resamples`
    resamples of the problems with replacement. Deterministic for a seed."""
    values = np.asarray(differences, dtype=float)
    if values.ndim != 1 or not len(values):
        raise ValueError(f"need a non-empty list of per-problem differences, got shape {values.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(values.mean()), float(low), float(high))
