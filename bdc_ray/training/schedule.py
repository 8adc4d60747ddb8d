"""The learning-rate schedule of every loop: a pure function of the step, so a resumed run and an
uninterrupted one step with the same rates."""

from __future__ import annotations

import math
from dataclasses import dataclass

_MIN_LR_RATIO = 0.1
"""Cosine decay ends at this fraction of the peak rate rather than 0: the last steps still learn."""


@dataclass(frozen=True)
class Schedule:
    steps: int
    lr: float
    warmup: int
    tokens_per_step: int
    weight_decay: float


def learning_rate(step: int, schedule: Schedule) -> float:
    """Linear warm-up to the peak, then cosine decay to `_MIN_LR_RATIO` of it at the last step."""
    if step < schedule.warmup:
        return schedule.lr * (step + 1) / schedule.warmup
    span = max(1, schedule.steps - schedule.warmup)
    progress = min(1.0, (step - schedule.warmup) / span)
    return schedule.lr * (_MIN_LR_RATIO + (1 - _MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress)))
