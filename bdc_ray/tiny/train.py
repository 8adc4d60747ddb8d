"""The training loop of a tiny model: a fixed number of optimizer steps, so a seed fixes the model.

Wall time only ever cuts a run short (the safety budget); it never decides how much is trained,
because a time-based stop would make the same config give different weights on a busier machine.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Sequence

from bdc_ray.training import Example, Schedule, collate, epoch_batches, learning_rate, masked_loss

_CLIP_NORM = 1.0
_LOSS_POINTS = 20
"""Points of the loss curve kept in the build metadata."""


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
    device = next(model.parameters()).device  # the caller placed it (training.worker_device)
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
            ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, schedule)
            loss = masked_loss(model(input_ids=ids, attention_mask=mask).logits, labels)
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
