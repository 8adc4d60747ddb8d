"""A tiny base model and SFT rows for the experts tests, built here in a few seconds.

The base is a random-init 2-layer Llama with a byte-level BPE trained on the synthetic suite's
text (bdc_ray.tiny.train_tokenizer), saved with save_pretrained and loaded back by path
like any checkpoint: nothing is downloaded. Being untrained, it proves mechanics (masking,
resuming, saving, reloading), not accuracy; benchmarks/experts_quality.py measures accuracy.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from dataclasses import dataclass
from pathlib import Path

import pytest

from bdc_ray.artifacts.sft import SFTRow, problem_rows
from bdc_ray.problems.synth import SynthConfig, generate_suite, training_text


@dataclass(frozen=True)
class TinyBase:
    path: str
    rows: list[SFTRow]


def build_tiny_base(folder: Path, rows: list[SFTRow], texts: list[str]) -> str:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from bdc_ray.tiny import train_tokenizer

    tokenizer = train_tokenizer(texts, vocab_size=400)
    tokenizer.model_max_length = 320
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=320,
        tie_word_embeddings=True,
        initializer_range=0.05,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> TinyBase:
    import torch

    torch.set_num_threads(1)
    suite = generate_suite(SynthConfig(train_per_family=12, heldout_per_family=0, heldout_comp_per_family=0))
    rows = problem_rows(suite.train)
    path = build_tiny_base(tmp_path_factory.mktemp("tiny-base"), rows, [training_text(p) for p in suite.train])
    return TinyBase(path=path, rows=rows)
