"""The one training loss is a model's own causal-LM loss to the bit; the validation loss weighs
every response token alike, however the set is cut into batches."""

from __future__ import annotations

import pytest

from bdc_ray.training import collate, encode_pairs, masked_loss, validation_loss


@pytest.fixture(scope="module")
def model(tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=320)
    return LlamaForCausalLM(config).eval()


def test_masked_loss_is_the_models_own_loss_exactly(model, tokenizer, pairs) -> None:
    ids, mask, labels = collate(encode_pairs(tokenizer, pairs[:6], context=320), tokenizer.pad_token_id)
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    assert masked_loss(out.logits, labels).item() == out.loss.item()


def test_validation_loss_is_token_weighted_and_batching_does_not_change_it(model, tokenizer, pairs) -> None:
    examples = encode_pairs(tokenizer, pairs[:8], context=320)
    one_by_one = []
    for e in examples:
        ids, mask, labels = collate([e], tokenizer.pad_token_id)
        tokens = sum(label != -100 for label in e.labels[1:])
        one_by_one.append((masked_loss(model(input_ids=ids, attention_mask=mask).logits, labels).item(), tokens))
    weighted = sum(loss * n for loss, n in one_by_one) / sum(n for _, n in one_by_one)
    model.train()
    assert validation_loss(model, examples, tokenizer.pad_token_id, tokens_per_batch=64) == pytest.approx(weighted, rel=1e-5)
    assert validation_loss(model, examples, tokenizer.pad_token_id, tokens_per_batch=4096) == pytest.approx(weighted, rel=1e-5)
    assert model.training  # put back as it was
