"""Training data of a tiny model: which tasks, the tokenizer, and token ids with a loss mask
(the training kit's `encode_pairs` over the suite's prompt and target)."""

from __future__ import annotations

import random
from typing import Mapping, Sequence

from bdc_ray.problems.synth import format_prompt, format_target
from bdc_ray.problems.types import Problem
from bdc_ray.training import Example, encode_pairs

BOS, EOS, PAD = "<bos>", "<eos>", "<pad>"

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
    examples = encode_pairs(tokenizer, [(format_prompt(p), format_target(p)) for p in problems], context)
    return examples, len(problems) - len(examples)
