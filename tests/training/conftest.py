"""A byte-level BPE trained on the synthetic suite (as tiny models and test bases are) and the
suite's (prompt, response) pairs: what the training kit is fed everywhere."""

from __future__ import annotations

import pytest

from bdc_ray.problems.synth import SynthConfig, format_prompt, format_target, generate_suite, training_text


@pytest.fixture(scope="session")
def problems():
    return generate_suite(SynthConfig(train_per_family=12, heldout_per_family=0, heldout_comp_per_family=0)).train


@pytest.fixture(scope="session")
def pairs(problems) -> list[tuple[str, str]]:
    return [(format_prompt(p), format_target(p)) for p in problems]


@pytest.fixture(scope="session")
def tokenizer(problems):
    from bdc_ray.tiny import train_tokenizer

    tokenizer = train_tokenizer([training_text(p) for p in problems], vocab_size=400)
    tokenizer.model_max_length = 320
    return tokenizer
