"""One small tiny-model recipe (2 layers x 64, 60 steps on 180 tasks: a few seconds on one thread)
and its build, shared by the build and evaluation tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from bdc_ray.problems.synth import SynthConfig
from bdc_ray.tiny import TinyModelConfig, build_tiny

SMALL = TinyModelConfig(
    layers=2,
    hidden=64,
    vocab_size=512,
    steps=60,
    warmup=10,
    tokens_per_step=1024,
    synth=SynthConfig(train_per_family=30, heldout_per_family=1, heldout_comp_per_family=0),
)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(SMALL, tmp_path_factory.mktemp("tiny-a"), progress=False)
