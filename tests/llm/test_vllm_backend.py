"""What the vLLM backend would ask of vLLM, checked without vLLM (it cannot be installed on CPU)."""

from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import pytest

from bdc_ray.llm import BackendSpec, SamplingParams, make_llm
from bdc_ray.llm.vllm_backend import (
    VLLMBackend,
    adapter_rank,
    adapters_lora,
    collect_outputs,
    engine_kwargs,
    lora_kwargs,
    lora_request_args,
    max_lora_rank_for,
    sampling_kwargs,
)


def test_sampling_kwargs() -> None:
    assert sampling_kwargs(SamplingParams()) == {
        "n": 1,
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 256,
        "stop": None,
        "seed": None,
    }
    params = SamplingParams(n=4, temperature=0.8, top_p=0.9, max_new_tokens=64, stop=["\nclass"], seed=7)
    assert sampling_kwargs(params) == {
        "n": 4,
        "temperature": 0.8,
        "top_p": 0.9,
        "max_tokens": 64,
        "stop": ["\nclass"],
        "seed": 7,
    }


def test_engine_kwargs_size_lora_for_the_adapters(tiny_model) -> None:
    assert engine_kwargs("base", adapters_lora({})) == {"model": "base", "dtype": "auto"}
    kwargs = engine_kwargs(tiny_model.path, adapters_lora(tiny_model.adapters), dtype="bfloat16")
    assert kwargs == {
        "model": tiny_model.path,
        "dtype": "bfloat16",
        "enable_lora": True,
        "max_lora_rank": 8,  # the adapters have r=4; vLLM's smallest allowed rank is 8
        "max_loras": 2,
    }
    overridden = engine_kwargs("base", adapters_lora(tiny_model.adapters),
                               engine_args={"max_loras": 1, "tensor_parallel_size": 2})
    assert overridden["max_loras"] == 1 and overridden["tensor_parallel_size"] == 2


def test_lora_kwargs_for_adapters_made_at_run_time() -> None:
    """Serve's customized adapters do not exist when the engine starts: their rank and count are given."""
    assert lora_kwargs([3 * 16], max_loras=4) == {"enable_lora": True, "max_lora_rank": 64, "max_loras": 4}
    assert lora_kwargs([2 * 4], 2, max_cpu_loras=8)["max_cpu_loras"] == 8


def test_adapter_rank_reads_rank_pattern(tmp_path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 8, "rank_pattern": {"q_proj": 24}}))
    assert adapter_rank(tmp_path) == 24
    assert max_lora_rank_for([24, 8]) == 32
    assert max_lora_rank_for([64]) == 64
    with pytest.raises(ValueError, match="exceeds"):
        max_lora_rank_for([1024])


def test_lora_request_ids_are_stable_and_positive() -> None:
    adapters = {"beta": "/b", "alpha": "/a"}
    assert lora_request_args(None, adapters) is None
    assert lora_request_args("alpha", adapters) == ("alpha", 1, "/a")
    assert lora_request_args("beta", adapters) == ("beta", 2, "/b")
    with pytest.raises(KeyError, match="gamma"):
        lora_request_args("gamma", adapters)


def test_collect_outputs_reads_request_outputs() -> None:
    def completion(text: str, tokens: int) -> SimpleNamespace:
        return SimpleNamespace(text=text, token_ids=list(range(tokens)))

    outputs = [
        SimpleNamespace(prompt_token_ids=[1, 2, 3], outputs=[completion("a\nb", 3), completion("c", 1)]),
        SimpleNamespace(prompt_token_ids=[4], outputs=[completion("d", 2), completion("e\n", 2)]),
    ]
    assert collect_outputs(outputs, ["\n"]) == ([["a", "c"], ["d", "e"]], 4, 8)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_without_vllm_the_error_says_how_to_install_it() -> None:
    with pytest.raises(ImportError, match=r"pip install 'bdc-ray\[vllm\]'"):
        VLLMBackend("some/model")
    with pytest.raises(ImportError, match="GPU node"):
        make_llm(BackendSpec(backend="vllm", path="some/model"))
