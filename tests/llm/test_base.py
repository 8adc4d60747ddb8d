"""The shared interface pieces: parameter validation, stop truncation, stats, spec and factory."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from bdc_ray.llm import BackendSpec, GenerationStats, SamplingParams, context_length, make_llm
from bdc_ray.llm.base import run_blocking, truncate_at_stop
from bdc_ray.llm.openai_backend import OpenAICompatibleLLM
from bdc_ray.threads import configure_torch_threads


def test_sampling_params_validate() -> None:
    assert SamplingParams().greedy
    assert not SamplingParams(temperature=0.7).greedy
    for bad in ({"n": 0}, {"temperature": -1}, {"top_p": 0}, {"top_p": 1.5}, {"max_new_tokens": 0}, {"stop": [""]}):
        with pytest.raises(ValidationError):
            SamplingParams(**bad)
    with pytest.raises(ValidationError, match="extra"):
        SamplingParams(max_tokens=5)


def test_truncate_at_earliest_stop_whatever_the_order() -> None:
    text = "x = 1\n# end\ny = 2"
    assert truncate_at_stop(text, ["# end", "\n"]) == "x = 1"
    assert truncate_at_stop(text, ["\n", "# end"]) == "x = 1"
    assert truncate_at_stop(text, ["zzz"]) == text
    assert truncate_at_stop(text, []) == text


def test_stats_add_up() -> None:
    total = GenerationStats(prompt_tokens=3, completion_tokens=10, seconds=2.0) + GenerationStats(
        prompt_tokens=1, completion_tokens=30, seconds=2.0
    )
    assert (total.prompt_tokens, total.completion_tokens, total.tokens_per_second) == (4, 40, 10.0)
    assert GenerationStats().tokens_per_second == 0.0


def test_run_blocking_works_inside_a_running_loop() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def caller() -> int:
        return run_blocking(answer)

    assert run_blocking(answer) == 42
    assert asyncio.run(caller()) == 42


def test_backend_spec() -> None:
    with pytest.raises(ValidationError, match="base_url"):
        BackendSpec(backend="openai", path="m")
    with pytest.raises(ValidationError, match="extra"):
        BackendSpec(backend="transformers", path="m", batch=3)
    with pytest.raises(ValidationError):
        BackendSpec(backend="tgi", path="m")
    assert BackendSpec(backend="vllm", path="Qwen/Qwen2.5-Coder-7B").display_name() == "vllm:Qwen2.5-Coder-7B"
    assert BackendSpec(backend="transformers", path="/models/tiny/", name="agent0").display_name() == "agent0"


def test_make_llm_openai_needs_no_model_or_network() -> None:
    spec = BackendSpec(
        backend="openai", path="coder", base_url="http://127.0.0.1:9/v1/", chat=True, max_concurrency=3, timeout_s=5
    )
    llm = make_llm(spec)
    assert isinstance(llm, OpenAICompatibleLLM)
    assert (llm.url, llm.model, llm.max_concurrency, llm.timeout_s) == (
        "http://127.0.0.1:9/v1/chat/completions",
        "coder",
        3,
        5,
    )


def test_torch_threads_follow_omp_num_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert configure_torch_threads(None) == 1
        assert configure_torch_threads(2) == 2
    finally:
        torch.set_num_threads(before)


def test_context_length_reads_every_architectures_name_for_it() -> None:
    from transformers import AutoConfig, PretrainedConfig

    assert context_length(AutoConfig.for_model("llama", max_position_embeddings=320)) == 320
    assert context_length(AutoConfig.for_model("gpt2", n_positions=96)) == 96
    assert context_length(PretrainedConfig()) is None
