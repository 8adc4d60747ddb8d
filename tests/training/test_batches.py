"""Length-bucketed batches: every example once per epoch, little padding."""

from __future__ import annotations

import random

from bdc_ray.training import collate, encode_pairs, epoch_batches


def test_bucketed_batches_waste_little_on_padding(tokenizer, pairs) -> None:
    examples = encode_pairs(tokenizer, pairs, context=10_000)
    batches = epoch_batches(examples, 1024, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(len(examples)))
    padded = real = 0
    for batch in batches:
        ids, mask, _ = collate([examples[i] for i in batch], tokenizer.pad_token_id)
        padded += ids.numel()
        real += int(mask.sum())
        assert ids.numel() <= 1024 or len(batch) == 1
    assert padded / real < 1.15
