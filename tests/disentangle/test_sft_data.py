"""SFT rows -> prompt/response -> token ids with the prompt masked, and length-bucketed batches."""

from __future__ import annotations

import random

import pytest

from bdc_ray.disentangle.sft_data import (
    encode_pairs,
    model_context,
    problem_rows,
    prompt_response,
    training_rows,
)
from bdc_ray.llm.tiny_data import IGNORE, collate, epoch_batches
from bdc_ray.llm.tiny_eval import tiny_prompt
from bdc_ray.problems.prompt_format import prompt_text
from bdc_ray.problems.synth import SynthConfig, format_prompt, format_target, generate_suite


@pytest.fixture(scope="module")
def problems():
    return generate_suite(SynthConfig(train_per_family=3, heldout_per_family=0, heldout_comp_per_family=0)).train


@pytest.fixture(scope="module")
def tokenizer(tiny_base):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_base.path)


def test_prompt_and_response_are_the_suites_format(problems) -> None:
    for problem, row in zip(problems, problem_rows(problems), strict=True):
        prompt, response = prompt_response(row)
        assert prompt == format_prompt(problem) == tiny_prompt(problem)
        assert response == format_target(problem)
        # Thought-to-code prompting appends the thoughts exactly as the t2c response starts.
        assert prompt_text(row["problem"], row["thoughts"]) == tiny_prompt(problem, with_thoughts=True)
    row = problem_rows(problems[:1])[0]
    assert prompt_response({**row, "task": "p2t", "code": None})[1] == "".join(f"# {t}\n" for t in row["thoughts"])


def test_bad_rows_are_named(problems) -> None:
    row = problem_rows(problems[:1])[0]
    with pytest.raises(ValueError, match="has no code"):
        prompt_response({**row, "code": None})
    with pytest.raises(ValueError, match="unknown task 'x'"):
        prompt_response({**row, "task": "x"})
    with pytest.raises(ValueError, match="no thoughts"):
        prompt_response({**row, "task": "p2t", "thoughts": []})


def test_p2t_rows_are_kept_only_without_a_t2c_row(problems) -> None:
    t2c = problem_rows(problems[:2])
    p2t = [{**r, "task": "p2t", "code": None} for r in t2c]
    orphan = {**p2t[0], "problem_id": "only-thoughts"}
    assert training_rows([p2t[0], t2c[0], p2t[1], t2c[1], orphan]) == [t2c[0], t2c[1], orphan]


def test_only_the_response_and_eos_carry_loss(tokenizer, problems) -> None:
    pairs = [prompt_response(r) for r in problem_rows(problems)]
    examples = encode_pairs(tokenizer, pairs, context=10_000)
    assert len(examples) == len(pairs)
    for (prompt, response), example in zip(pairs, examples, strict=True):
        prompt_ids = tokenizer(prompt)["input_ids"]
        n = len(prompt_ids)
        assert example.ids[:n] == prompt_ids and prompt_ids[0] == tokenizer.bos_token_id
        assert example.labels[:n] == [IGNORE] * n
        assert example.labels[n:] == example.ids[n:] and example.ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(example.ids[n:-1]) == response


def test_rows_longer_than_the_context_are_dropped_not_cut(tokenizer, problems) -> None:
    pairs = [prompt_response(r) for r in problem_rows(problems)]
    lengths = [len(e.ids) for e in encode_pairs(tokenizer, pairs, context=10_000)]
    limit = sorted(lengths)[len(lengths) // 2]
    kept = encode_pairs(tokenizer, pairs, context=limit)
    assert len(kept) == sum(n <= limit for n in lengths) < len(pairs)
    assert all(e.ids[-1] == tokenizer.eos_token_id for e in kept)
    assert encode_pairs(tokenizer, [], context=limit) == []


def test_context_defaults_to_the_models(tokenizer) -> None:
    from transformers import AutoConfig

    config = AutoConfig.for_model("llama", max_position_embeddings=320)
    assert model_context(tokenizer, config, None) == 320
    assert model_context(tokenizer, config, 64) == 64


def test_bucketed_batches_waste_little_on_padding(tokenizer, tiny_base) -> None:
    examples = encode_pairs(tokenizer, [prompt_response(r) for r in tiny_base.rows], context=10_000)
    batches = epoch_batches(examples, 1024, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(len(examples)))
    padded = real = 0
    for batch in batches:
        ids, mask, _ = collate([examples[i] for i in batch], tokenizer.pad_token_id)
        padded += ids.numel()
        real += int(mask.sum())
        assert ids.numel() <= 1024 or len(batch) == 1
    assert padded / real < 1.15
