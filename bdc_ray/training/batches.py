"""Batches of similar lengths, so CPU time is spent on tokens rather than on padding."""

from __future__ import annotations

import random
from typing import Sequence

from bdc_ray.training.examples import IGNORE, Example

_SHUFFLE_POOL = 512
"""Examples sorted by length together before being cut into batches: large enough that a batch
holds nearly equal lengths (little padding), small enough that batches still mix families."""


def epoch_batches(examples: Sequence[Example], tokens_per_step: int, rng: random.Random) -> list[list[int]]:
    """One shuffled pass over the examples as batches of indices, each at most `tokens_per_step`
    tokens once padded (a longer example gets a batch of its own)."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    for start in range(0, len(order), _SHUFFLE_POOL):
        pool = sorted(order[start : start + _SHUFFLE_POOL], key=lambda i: len(examples[i].ids))
        batch: list[int] = []
        for i in pool:
            # Sorted ascending, so the newcomer is the longest and sets the padded width.
            if batch and len(examples[i].ids) * (len(batch) + 1) > tokens_per_step:
                batches.append(batch)
                batch = []
            batch.append(i)
        batches.append(batch)
    rng.shuffle(batches)
    return batches


def collate(examples: Sequence[Example], pad_id: int):
    """Right-padded (input_ids, attention_mask, labels) tensors."""
    import torch

    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.ids)
        ids[row, :n] = torch.tensor(example.ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return ids, mask, labels
