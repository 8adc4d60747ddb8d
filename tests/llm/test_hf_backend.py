"""The transformers backend on the session's tiny model: batching, sampling, stops, adapters."""

from __future__ import annotations

import asyncio
import re

import pytest

from bdc_ray.llm import BackendSpec, SamplingParams, make_llm
from bdc_ray.llm.hf_backend import TransformersLLM

GREEDY = SamplingParams(max_new_tokens=20)
PROMPTS = ["def add_3(x):\n    return", "def mul_", "def", "def sub_7(", "def mul_2(z):\n    return z", "def add_"]


def test_loads_by_path_and_writes_python(tiny_model) -> None:
    llm = make_llm(BackendSpec(backend="transformers", path=tiny_model.path, device="cpu", threads=1))
    [[text]] = llm.generate(["def add_5(y):\n    return"], GREEDY)
    assert re.fullmatch(r" [a-z] [-+*] \d\n", text), text  # the shape of its training corpus, not noise


def test_left_padded_batches_equal_single_prompts(hf_llm: TransformersLLM) -> None:
    batched = hf_llm.generate(PROMPTS, GREEDY)  # 6 prompts of mixed lengths in chunks of max_batch_size=4
    alone = [hf_llm.generate([p], GREEDY)[0] for p in PROMPTS]
    assert batched == alone
    assert all(len(t) == 1 and t[0] for t in batched)


def test_stats_count_prompt_and_generated_tokens(hf_llm: TransformersLLM) -> None:
    texts, stats = hf_llm.generate_with_stats(PROMPTS[:3], GREEDY)
    expected_prompt = sum(len(hf_llm.tokenizer(p)["input_ids"]) for p in PROMPTS[:3])
    assert stats.prompt_tokens == expected_prompt
    decoded = sum(len(hf_llm.tokenizer(t[0])["input_ids"]) for t in texts)
    assert decoded <= stats.completion_tokens <= 3 * GREEDY.max_new_tokens
    assert stats.seconds > 0
    assert hf_llm.generate_with_stats([], GREEDY)[0] == []


def test_n_samples(hf_llm: TransformersLLM) -> None:
    greedy = hf_llm.generate(PROMPTS[:2], GREEDY.model_copy(update={"n": 3}))
    assert [len(t) for t in greedy] == [3, 3] and all(len(set(t)) == 1 for t in greedy)

    sampled = hf_llm.generate(PROMPTS[:2], SamplingParams(n=5, temperature=1.2, max_new_tokens=12, seed=3))
    assert [len(t) for t in sampled] == [5, 5]
    assert all(len(set(t)) > 1 for t in sampled)


def test_seed_makes_sampling_reproducible(hf_llm: TransformersLLM) -> None:
    params = SamplingParams(n=3, temperature=1.0, top_p=0.95, max_new_tokens=12, seed=11)
    first = hf_llm.generate(PROMPTS, params)
    assert hf_llm.generate(PROMPTS, params) == first
    assert hf_llm.generate(PROMPTS, params.model_copy(update={"seed": 12})) != first


def test_stop_strings_end_generation_and_are_removed(hf_llm: TransformersLLM) -> None:
    full, full_stats = hf_llm.generate_with_stats(PROMPTS, GREEDY)
    stopped, stop_stats = hf_llm.generate_with_stats(PROMPTS, GREEDY.model_copy(update={"stop": ["\n", "):"]}))
    for [long], [short] in zip(full, stopped):
        assert "\n" not in short and "):" not in short
        assert short == long.split("\n")[0].split("):")[0]
    assert stop_stats.completion_tokens < full_stats.completion_tokens  # stopped early, not just cut afterwards


def test_adapters_switch_per_call_and_none_is_the_base_model(hf_llm: TransformersLLM, tiny_model) -> None:
    prompts = ["def ", "def add_3(x):\n    return"]
    base = hf_llm.generate(prompts, GREEDY)
    alpha = hf_llm.generate(prompts, GREEDY, adapter="alpha")
    beta = hf_llm.generate(prompts, GREEDY, adapter="beta")
    assert alpha != base and beta != base and alpha != beta
    assert hf_llm.generate(prompts, GREEDY, adapter="alpha") == alpha  # switching back restores it

    plain = TransformersLLM(tiny_model.path, device="cpu", threads=1)
    assert plain.generate(prompts, GREEDY) == base
    assert hf_llm.adapters == ("alpha", "beta")

    with pytest.raises(KeyError, match="gamma"):
        hf_llm.generate(prompts, GREEDY, adapter="gamma")
    with pytest.raises(KeyError, match="alpha"):
        plain.generate(prompts, GREEDY, adapter="alpha")
    with pytest.raises(ValueError, match="already loaded"):
        hf_llm.load_adapter("alpha", tiny_model.adapters["alpha"])


def test_adapter_loaded_later_matches_one_loaded_at_start(hf_llm: TransformersLLM, tiny_model) -> None:
    late = TransformersLLM(tiny_model.path, device="cpu", threads=1)
    late.load_adapter("beta", tiny_model.adapters["beta"])
    assert late.generate(["def "], GREEDY, adapter="beta") == hf_llm.generate(["def "], GREEDY, adapter="beta")


def test_async_generate_equals_sync(hf_llm: TransformersLLM) -> None:
    async def both() -> list:
        return await asyncio.gather(hf_llm.agenerate(PROMPTS[:2], GREEDY), hf_llm.agenerate(PROMPTS[2:4], GREEDY))

    first, second = asyncio.run(both())
    assert first + second == hf_llm.generate(PROMPTS[:4], GREEDY)
