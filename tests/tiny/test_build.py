"""The tiny-model builder: deterministic, cached, atomic, and loadable like any HF checkpoint.

Builds are small (2 layers x 64, 60 steps on 180 tasks: a few seconds each on one thread), so
they prove the mechanics, not accuracy; benchmarks/tiny_models.py measures accuracy.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import time
from pathlib import Path

import pytest

from bdc_ray.problems.synth import SynthConfig, format_prompt, generate_suite
from bdc_ray.tiny import TinyModelConfig, build_dir, build_tiny, config_hash, load_build_info
from bdc_ray.tiny import build as tiny
from tests.tiny.conftest import SMALL


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def test_same_seed_same_model_other_seed_differs(built: Path, tmp_path: Path) -> None:
    again = build_tiny(SMALL, tmp_path / "b", progress=False)
    other = build_tiny(SMALL.model_copy(update={"seed": 1}), tmp_path / "c", progress=False)
    assert again != built and again.name == built.name
    assert (again / "tokenizer.json").read_bytes() == (built / "tokenizer.json").read_bytes()
    first, second, third = _weights(built), _weights(again), _weights(other)
    assert first.keys() == second.keys() == third.keys()
    assert all((first[k] == second[k]).all() for k in first)
    assert any((first[k] != third[k]).any() for k in first)


def test_second_call_reuses_the_build(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = (built / tiny.INFO_FILE).stat().st_mtime_ns
    monkeypatch.setattr(tiny, "_build_into", lambda *a, **k: pytest.fail("a finished build was trained again"))
    started = time.monotonic()
    assert build_tiny(SMALL, built.parent, progress=False) == built
    assert time.monotonic() - started < 1.0
    # name and budget do not change the weights, so they do not change the hash.
    assert build_tiny(SMALL.model_copy(update={"budget_s": 999.0}), built.parent) == built
    assert (built / tiny.INFO_FILE).stat().st_mtime_ns == stamp


def test_metadata_and_loss_went_down(built: Path) -> None:
    info = load_build_info(built)
    assert info.config == SMALL and info.config_hash == config_hash(SMALL)
    assert info.complete and info.steps_done == SMALL.steps and info.threads == 1
    assert info.train_tasks + info.dropped_tasks == 180 and info.train_tasks > 150  # too long for 256 tokens: dropped
    assert info.tokens > 0 and info.tokens_per_s > 0 and info.wall_s >= info.train_s > 0
    first, last = info.loss_curve[0][1], info.final_loss
    assert last < 0.6 * first, info.loss_curve


def test_loads_with_auto_classes_and_generates(built: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bdc_ray.llm import SamplingParams
    from bdc_ray.llm.hf_backend import TransformersLLM

    tokenizer = AutoTokenizer.from_pretrained(built)
    model = AutoModelForCausalLM.from_pretrained(built)
    assert model.config.tie_word_embeddings and model.config.num_hidden_layers == 2
    assert model.config.eos_token_id == tokenizer.eos_token_id
    text = "def f(x):\n    return `x` + 1  # héllo ✓\n"
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == text

    problem = generate_suite(SMALL.synth).heldout[0]
    llm = TransformersLLM(str(built), device="cpu", threads=1)
    [[greedy]] = llm.generate([format_prompt(problem)], SamplingParams(max_new_tokens=40))
    assert greedy.strip()


def test_interrupted_build_leaves_nothing_that_looks_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(folder: Path, *args, **kwargs):
        (folder / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(tiny, "_build_into", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_tiny(SMALL, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_budget_cut_build_is_saved_flagged_and_warned(tmp_path: Path) -> None:
    cut = SMALL.model_copy(update={"budget_s": 1e-3})
    with pytest.warns(RuntimeWarning, match="NOT reproducible"):
        path = build_tiny(cut, tmp_path, progress=False)
    info = load_build_info(path)
    assert not info.complete and info.steps_done < SMALL.steps
    with pytest.warns(RuntimeWarning, match="NOT reproducible"):
        assert build_tiny(cut, tmp_path, progress=False) == path  # no more time allowed: reused, warned again
    assert build_dir(SMALL, tmp_path) == path  # the same hash: a call with more time would rebuild it


def test_family_weights_are_hashed_only_when_set() -> None:
    import hashlib
    import json

    plain = json.dumps(
        {"format_version": tiny.FORMAT_VERSION, "config": SMALL.model_dump(mode="json", exclude={"name", "budget_s", "family_weights"})},
        sort_keys=True,
    )
    assert config_hash(SMALL) == hashlib.sha256(plain.encode()).hexdigest()  # the hash recipes had before the field
    weighted = SMALL.model_copy(update={"family_weights": {"arith": 2.0}})
    assert config_hash(weighted) != config_hash(SMALL)
    with pytest.raises(ValueError, match="does not train on"):
        TinyModelConfig(families=["arith"], family_weights={"io": 2.0})
    with pytest.raises(ValueError, match="> 0"):
        TinyModelConfig(family_weights={"io": 0.0})


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="divide"):
        TinyModelConfig(hidden=100, heads=3)
    with pytest.raises(ValueError, match="families"):
        TinyModelConfig(families=["arith"], synth=SynthConfig(families=["io"]))
    with pytest.raises(ValueError):
        TinyModelConfig(stepz=10)
    assert config_hash(SMALL) != config_hash(SMALL.model_copy(update={"lr": 1e-3}))
    assert config_hash(SMALL) == config_hash(SMALL.model_copy(update={"name": "agent-a"}))
