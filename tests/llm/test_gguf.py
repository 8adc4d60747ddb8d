"""GGUF -> HF conversion on a tiny GGUF written by the test itself (gguf_files.py): same logits,
same token ids, the chat template kept, provenance recorded, converted once, split files joined,
and a GGUF model entry loaded by the backends like any folder."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bdc_ray.llm import gguf as gguf_module
from bdc_ray.llm.gguf import PACKAGE_PREFIX, ensure_converted, locate, read_source
from bdc_ray.llm.spec import BackendSpec
from tests.llm.gguf_files import CHAT_TEMPLATE, write_tiny_gguf

CODE = "def add_3(x):\n    return x + 3\n<|im_end|>"


def _logits(folder: Path, text: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        return ids[0].tolist(), model(ids).logits


def test_conversion_reproduces_the_model_and_its_tokenizer(tiny_gguf, tmp_path: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    folder = ensure_converted([str(tiny_gguf.path)], tmp_path)
    ids, logits = _logits(folder, CODE)
    source_ids, source_logits = _logits(tiny_gguf.hf_folder, CODE)
    assert ids == source_ids
    assert (logits - source_logits).abs().max().item() == 0.0  # f32 tensors, rotary rows un-permuted exactly
    config = AutoConfig.from_pretrained(folder)
    assert (config.num_attention_heads, config.num_key_value_heads, config.tie_word_embeddings) == (4, 2, True)
    assert getattr(config, "quantization_config", None) is None  # a plain checkpoint: peft and Ray Train load it
    assert AutoTokenizer.from_pretrained(folder).chat_template == CHAT_TEMPLATE


def test_source_records_origin_licence_and_versions(tiny_gguf, tmp_path: Path) -> None:
    folder = ensure_converted([str(tiny_gguf.path)], tmp_path)
    source = read_source(folder)
    assert source["sha256"] == gguf_module.sha256_of([tiny_gguf.path])
    assert folder.name.endswith(source["sha256"][:16])
    assert source["files"] == [{"location": str(tiny_gguf.path), "path": str(tiny_gguf.path),
                                "bytes": tiny_gguf.path.stat().st_size}]
    assert source["license"] == {"gguf": "apache-2.0", "packages": {}, "declared": True}
    assert source["gguf_metadata"]["general.name"] == "bdc tiny test model"
    assert source["architecture"] == "LlamaForCausalLM" and source["dequantized"] and source["chat_template"]
    assert set(source["converted_with"]) == {"transformers", "gguf", "torch"}


def test_a_missing_licence_is_recorded_and_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    unlicensed = write_tiny_gguf(tmp_path / "src", license=None)
    with caplog.at_level(logging.WARNING, logger="bdc_ray.llm.gguf"):
        folder = ensure_converted([str(unlicensed.path)], tmp_path / "cache")
    assert read_source(folder)["license"]["declared"] is False
    assert "no licence declared" in caplog.text


def test_converted_once_then_reused(tiny_gguf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = ensure_converted([str(tiny_gguf.path)], tmp_path)

    def fail(*args, **kwargs):
        raise AssertionError("converted a second time")

    monkeypatch.setattr(gguf_module, "_convert", fail)
    assert ensure_converted([tiny_gguf.path.name], tmp_path, base=str(tiny_gguf.path.parent)) == first
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no staging folder left behind


def test_split_parts_are_joined_and_checked(tiny_gguf, tmp_path: Path) -> None:
    data = tiny_gguf.path.read_bytes()
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    parts = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        part = tmp_path / f"tiny.gguf.part{i:02d}"
        part.write_bytes(data[a:b])
        parts.append(part.name)
    whole = gguf_module.sha256_of([tiny_gguf.path])
    folder = ensure_converted(parts, tmp_path / "cache", base=str(tmp_path), expected_sha256=whole, name="tiny")
    assert read_source(folder)["sha256"] == whole
    assert [f["location"] for f in read_source(folder)["files"]] == [str(tmp_path / p) for p in parts]
    assert not list(folder.glob("*.gguf"))  # the joined file is not kept beside the weights
    with pytest.raises(ValueError, match="expected"):
        ensure_converted(list(reversed(parts)), tmp_path / "cache", base=str(tmp_path), expected_sha256=whole)


def test_quantized_weights_are_dequantized(tmp_path: Path) -> None:
    import torch

    quantized = write_tiny_gguf(tmp_path / "src", quantize=True)
    folder = ensure_converted([str(quantized.path)], tmp_path / "cache")
    ids, logits = _logits(folder, CODE)
    _, source_logits = _logits(quantized.hf_folder, CODE)
    assert read_source(folder)["gguf_metadata"]["tensor_types"] == ["F32", "Q8_0"]
    # Q8_0 keeps 8 bits per weight: close to the source, not equal to it.
    assert 0 < (logits - source_logits).abs().max().item() < 0.05
    assert torch.equal(logits.argmax(-1), source_logits.argmax(-1))


def test_package_locations_resolve_through_metadata_without_importing(tmp_path: Path) -> None:
    from importlib import metadata

    found = locate(f"{PACKAGE_PREFIX}gguf/gguf/__init__.py")
    assert found.path == Path(str(metadata.distribution("gguf").locate_file("gguf/__init__.py")))
    assert found.distribution is not None and found.distribution.metadata["Name"] == "gguf"
    with pytest.raises(FileNotFoundError, match=r"not installed; install the packaged models"):
        locate(f"{PACKAGE_PREFIX}no-such-model-package/model.gguf")
    with pytest.raises(FileNotFoundError, match="has no file"):
        locate(f"{PACKAGE_PREFIX}gguf/gguf/no-such.gguf")


def test_a_gguf_entry_loads_as_its_converted_folder(tiny_gguf, tmp_path: Path) -> None:
    from bdc_ray.llm.base import SamplingParams
    from bdc_ray.llm.factory import make_llm
    from bdc_ray.llm.hf_backend import TransformersLLM

    spec = BackendSpec(backend="transformers", path=str(tiny_gguf.path.parent), gguf_file=tiny_gguf.path.name,
                       gguf_cache=str(tmp_path), threads=1, chat=True)
    resolved = spec.resolved()
    assert resolved.gguf_file is None and Path(resolved.path).parent == tmp_path
    llm = make_llm(spec)
    assert isinstance(llm, TransformersLLM) and llm.chat and llm.context == 96
    sampling = SamplingParams(max_new_tokens=8)
    direct = TransformersLLM(resolved.path, threads=1, chat=True)
    assert llm.generate(["Write a function that adds 3"], sampling) == direct.generate(["Write a function that adds 3"], sampling)


def test_spec_rejects_gguf_for_remote_backends() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="gguf_file is for local backends"):
        BackendSpec(backend="openai", path="m", base_url="http://127.0.0.1:1/v1", gguf_file="m.gguf")

