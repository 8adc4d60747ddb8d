"""(prompt, response) pairs as token ids with the prompt masked.

Prompt and response are tokenized separately and concatenated, so the prompt's ids at training
time are exactly the ids a generator feeds the model at inference (a BPE merge across the
boundary would otherwise teach the model a prompt ending it never sees).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from bdc_ray.llm import context_length

IGNORE = -100
"""Label of a position without loss (prompt and padding), as torch's cross entropy skips it."""


@dataclass(frozen=True)
class Example:
    ids: list[int]
    labels: list[int]


def encode_pairs(tokenizer, pairs: Sequence[tuple[str, str]], context: int) -> list[Example]:
    """<prompt with the tokenizer's specials> response <eos>, loss on response and <eos> only.

    A pair longer than `context` is dropped (len(pairs) - len(result) of them), not truncated,
    because a cut response has no <eos> and stopping after the code is what must be learned.
    """
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos token: responses could not be terminated")
    if not pairs:
        return []
    prompts = tokenizer([p for p, _ in pairs], add_special_tokens=True)["input_ids"]
    responses = tokenizer([r for _, r in pairs], add_special_tokens=False)["input_ids"]
    examples = []
    for prompt, response in zip(prompts, responses, strict=True):
        answer = [*response, tokenizer.eos_token_id]
        if len(prompt) + len(answer) <= context:
            examples.append(Example(ids=list(prompt) + answer, labels=[IGNORE] * len(prompt) + answer))
    return examples


def model_context(tokenizer, model_config, requested: int | None) -> int:
    """The longest sequence to train on: `requested`, else the model's position limit."""
    if requested is not None:
        return requested
    limits = [context_length(model_config), getattr(tokenizer, "model_max_length", None)]
    usable = [int(v) for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
    if not usable:
        raise ValueError("cannot tell the model's context length: set `context` in the stage's config")
    return min(usable)
