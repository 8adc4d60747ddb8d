"""(prompt, response) pairs -> token ids with the prompt masked; the context a model trains on."""

from __future__ import annotations

from bdc_ray.training import IGNORE, encode_pairs, model_context


def test_only_the_response_and_eos_carry_loss(tokenizer, pairs) -> None:
    examples = encode_pairs(tokenizer, pairs, context=10_000)
    assert len(examples) == len(pairs)
    for (prompt, response), example in zip(pairs, examples, strict=True):
        prompt_ids = tokenizer(prompt)["input_ids"]
        n = len(prompt_ids)
        assert example.ids[:n] == prompt_ids and prompt_ids[0] == tokenizer.bos_token_id
        assert example.labels[:n] == [IGNORE] * n
        assert example.labels[n:] == example.ids[n:] and example.ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(example.ids[n:-1]) == response


def test_rows_longer_than_the_context_are_dropped_not_cut(tokenizer, pairs) -> None:
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
    assert model_context(tokenizer, AutoConfig.for_model("gpt2", n_positions=96), None) == 96
