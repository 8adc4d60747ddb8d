"""The training loop of a tiny model: a fixed number of optimizer steps, so a seed fixes the model.

Wall time only ever cuts a run short (the safety budget); it never decides how much is trained,
because a time-based stop would make the same config give different weights on a busier machine.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Sequence

from bdc_ray.llm.tiny_data import Example, collate, epoch_batches

_MIN_LR_RATIO = 0.1
"""Cosine decay ends at this fraction of the peak rate rather than 0: the last steps still learn."""

_CLIP_NORM = 1.0
_LOSS_POINTS = 20
"""Points of the loss curve kept in the build metadata."""


@dataclass(frozen=True)
class Schedule:
    steps: int
    lr: float
    warmup: int
    tokens_per_step: int
    weight_decay: float


@dataclass
class TrainReport:
    steps_done: int = 0
    tokens: int = 0
    seconds: float = 0.0
    budget_hit: bool = False
    loss_curve: list[tuple[int, float]] = field(default_factory=list)

    @property
    def final_loss(self) -> float | None:
        return self.loss_curve[-1][1] if self.loss_curve else None

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def learning_rate(step: int, schedule: Schedule) -> float:
    """Linear warm-up to the peak, then cosine decay to `_MIN_LR_RATIO` of it at the last step."""
    if step < schedule.warmup:
        return schedule.lr * (step + 1) / schedule.warmup
    span = max(1, schedule.steps - schedule.warmup)
    progress = min(1.0, (step - schedule.warmup) / span)
    return schedule.lr * (_MIN_LR_RATIO + (1 - _MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress)))


def train(
    model,
    examples: Sequence[Example],
    pad_id: int,
    schedule: Schedule,
    *,
    seed: int,
    deadline: float,
    progress: bool,
    label: str,
) -> TrainReport:
    """Train `model` in place; stops early only when `time.monotonic()` passes `deadline`."""
    import torch
    from tqdm.auto import tqdm

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": schedule.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=schedule.lr,
        betas=(0.9, 0.95),
    )
    rng = random.Random(f"bdc-tiny-batches:{seed}")
    report = TrainReport()
    every = max(1, schedule.steps // _LOSS_POINTS)
    window: list[float] = []
    batches: list[list[int]] = []
    model.train()
    start = time.monotonic()
    with tqdm(total=schedule.steps, desc=label, disable=not progress, mininterval=2.0, dynamic_ncols=True) as bar:
        for step in range(schedule.steps):
            if time.monotonic() > deadline:
                report.budget_hit = True
                break
            if not batches:
                batches = epoch_batches(examples, schedule.tokens_per_step, rng)
            ids, mask, labels = collate([examples[i] for i in batches.pop()], pad_id)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, schedule)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), _CLIP_NORM)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

            report.steps_done = step + 1
            report.tokens += int(mask.sum())
            window.append(loss.item())
            if report.steps_done % every == 0 or report.steps_done == schedule.steps:
                report.loss_curve.append((report.steps_done, round(sum(window) / len(window), 4)))
                window = []
            report.seconds = time.monotonic() - start
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{report.tokens_per_second:.0f}", refresh=False)
    if window:
        report.loss_curve.append((report.steps_done, round(sum(window) / len(window), 4)))
    model.eval()
    return report
