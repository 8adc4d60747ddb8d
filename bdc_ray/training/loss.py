"""The one loss every loop trains on and the one validation loss every stage reports.

Both are next-token cross entropy over the response tokens only (labels IGNORE elsewhere):
`masked_loss` is a batch's mean, what is back-propagated; `validation_loss` sums over a whole
set and divides by its token count, so long responses weigh by their length and the number does
not depend on how the set was cut into batches.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

from bdc_ray.training.batches import collate, epoch_batches
from bdc_ray.training.examples import IGNORE, Example

Forward = Callable[[list[int], object, object], object]
"""(indices of the batch's examples, input_ids, attention_mask) -> logits [batch, length, vocab]."""


def _summed(logits, labels):
    """(summed loss over the supervised next tokens, how many there are).

    Laid out as transformers' own causal-LM loss (labels shifted left and padded, every logit
    kept), so `masked_loss` equals a model's `.loss` to the bit and a tiny build trains exactly
    the weights it trained when the loop read `.loss`.
    """
    import torch

    target = torch.nn.functional.pad(labels, (0, 1), value=IGNORE)[:, 1:]
    logits = logits.float()
    total = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    return total, int((target != IGNORE).sum())


def masked_loss(logits, labels):
    """Mean next-token loss of a batch over its response tokens (what training minimises)."""
    total, count = _summed(logits, labels)
    return total / max(count, 1)


def validation_loss(
    model,
    examples: Sequence[Example],
    pad_id: int,
    tokens_per_batch: int = 4096,
    device=None,
    forward: Forward | None = None,
) -> float:
    """Token-weighted mean next-token loss over `examples`, without gradients, `model` in eval mode.

    `forward` gives a batch's logits when they are not simply `model(input_ids, attention_mask)`'s
    (the hypernetwork: the composed model under each row's routing weights).
    """
    import torch

    if not examples:
        raise ValueError("validation_loss needs at least one example")
    if forward is None:
        forward = lambda _, ids, mask: model(input_ids=ids, attention_mask=mask).logits  # noqa: E731
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        # The order is irrelevant to a sum; bucketing by length just keeps padding low.
        for batch in epoch_batches(examples, tokens_per_batch, random.Random(0)):
            ids, mask, labels = collate([examples[i] for i in batch], pad_id)
            if device is not None:
                ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
            summed, n = _summed(forward(batch, ids, mask), labels)
            total += summed.item()
            count += n
    model.train(was_training)
    return total / count
