"""Training data of a tiny model: which tasks, the tokenizer, token ids with a loss mask, batches.

Prompt and target are tokenized separately and concatenated, so the prompt's ids at training time
are exactly the ids `TransformersLLM` feeds the model at generation time (a BPE merge across the
prompt/target boundary would otherwise teach the model a prompt ending it never sees).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Mapping, Sequence

from bdc_ray.problems.synth import format_prompt, format_target
from bdc_ray.problems.types import Problem

BOS, EOS, PAD = "<bos>", "<eos>", "<pad>"

IGNORE = -100
"""Label of a position without loss (prompt and padding), as transformers' loss expects."""

_SHUFFLE_POOL = 512
"""Examples sorted by length together before being cut into batches: large enough that a batch
holds nearly equal lengths (little padding), small enough that batches still mix families."""


@dataclass(frozen=True)
class Example:
    ids: list[int]
    labels: list[int]


def select_problems(
    train: Sequence[Problem],
    families: Sequence[str] | None,
    fraction: float,
    seed: int,
    weights: Mapping[str, float] | None = None,
) -> list[Problem]:
    """The training tasks of `families`, and of each family the same `fraction` drawn by `seed`
    (scaled by the family's weight relative to the heaviest one, a family not named weighing 1).

    Drawing per family keeps every chosen family represented in proportion however small the fraction.
    """
    by_family: dict[str, list[Problem]] = {}
    for problem in train:
        if families is None or problem.family in families:
            by_family.setdefault(problem.family or "", []).append(problem)
    weight = {family: (weights or {}).get(family, 1.0) for family in by_family}
    heaviest = max(weight.values(), default=1.0)
    chosen: list[Problem] = []
    for family, problems in by_family.items():
        keep = max(1, round(len(problems) * fraction * weight[family] / heaviest))
        rng = random.Random(f"bdc-tiny-subset:{seed}:{family}")
        picked = set(rng.sample(range(len(problems)), keep))
        chosen.extend(p for i, p in enumerate(problems) if i in picked)
    return chosen


def train_tokenizer(texts: Sequence[str], vocab_size: int):
    """A byte-level BPE (any text round-trips) wrapped for transformers; prompts start with <bos>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[BOS, EOS, PAD],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    bpe.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bpe.token_to_id(BOS))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=BOS, eos_token=EOS, pad_token=PAD)


def encode(problems: Sequence[Problem], tokenizer, context: int) -> tuple[list[Example], int]:
    """<bos> prompt target <eos>, loss on target and <eos> only; returns (examples, dropped).

    An example longer than the context is dropped, not truncated: a cut target has no <eos>, and
    stopping after the code is exactly what the model must learn.
    """
    prompts = tokenizer([format_prompt(p) for p in problems], add_special_tokens=True)["input_ids"]
    targets = tokenizer([format_target(p) for p in problems], add_special_tokens=False)["input_ids"]
    examples, dropped = [], 0
    for prompt, target in zip(prompts, targets, strict=True):
        answer = [*target, tokenizer.eos_token_id]
        if len(prompt) + len(answer) > context:
            dropped += 1
            continue
        examples.append(Example(ids=prompt + answer, labels=[IGNORE] * len(prompt) + answer))
    return examples, dropped


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
