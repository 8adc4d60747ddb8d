"""Composition on a real model against real peft: the identities of DESIGN.md section 4, end to end."""

from __future__ import annotations

import pytest
import torch
from peft import PeftModel

from bdc_ray.customize.composed_lora import ComposedLoRALinear, RoutingError
from bdc_ray.customize.inject import ExpertMismatchError, inject, load_experts, select_modules
from tests.customize.conftest import ALPHA, R, TARGETS, load_base

ATOL = 1e-5


@pytest.fixture
def composed(tiny_base, random_experts):
    return inject(load_base(tiny_base), load_experts(random_experts))


@pytest.fixture
def batch(tiny_base):
    """Three prompts of different lengths, left-padded as generation pads them."""
    tok = tiny_base.tokenizer
    tok.padding_side = "left"
    return tok(["### Task\nSum the values of xs.", "### Task\nReverse", "### Solution\nreturn s[::-1]\n# walk"],
               return_tensors="pt", padding=True, return_token_type_ids=False)


def logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def test_experts_are_stacked_in_order(random_experts):
    stack = load_experts(random_experts)
    assert (stack.n_experts, stack.r, stack.entries, stack.scale) == (3, R, 3 * R, ALPHA / R)
    assert stack.target_modules == sorted(TARGETS)
    assert len(stack.a_cat) == 2 * len(TARGETS)  # 2 layers
    from peft.utils import load_peft_weights

    second = load_peft_weights(random_experts[1], device="cpu")
    name = "model.layers.1.mlp.down_proj"
    torch.testing.assert_close(stack.a_cat[name][R : 2 * R], second[f"base_model.model.{name}.lora_A.weight"])
    torch.testing.assert_close(stack.b_cat[name][:, R : 2 * R], second[f"base_model.model.{name}.lora_B.weight"])


def test_injection_replaces_exactly_the_adapted_modules_and_freezes_everything(composed):
    replaced = [n for n, m in composed.model.named_modules() if isinstance(m, ComposedLoRALinear)]
    assert replaced == composed.module_names and len(replaced) == 6
    assert {n.rsplit(".", 1)[1] for n in replaced} == set(TARGETS)
    assert not any(p.requires_grad for p in composed.model.parameters())


def test_zero_weights_are_the_base_model(tiny_base, composed, batch):
    expected = logits(load_base(tiny_base), batch)
    with composed.routing(composed.zeros(3)):
        torch.testing.assert_close(logits(composed.model, batch), expected, atol=ATOL, rtol=0)


def test_weights_on_one_experts_ranks_are_that_expert_through_peft(tiny_base, random_experts, composed, batch):
    for e, path in enumerate(random_experts):
        expected = logits(PeftModel.from_pretrained(load_base(tiny_base), path).eval(), batch)
        with composed.routing(composed.one_expert(e, 3)):
            got = logits(composed.model, batch)
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


def test_uniform_weights_are_the_average_of_the_experts(tiny_base, random_experts, composed, batch):
    # Per layer: the composed update is the mean of the experts' own peft layer updates.
    peft_model = PeftModel.from_pretrained(load_base(tiny_base), random_experts[0], adapter_name="e0").eval()
    for e, path in enumerate(random_experts[1:], start=1):
        peft_model.load_adapter(path, adapter_name=f"e{e}")
    name = "model.layers.0.self_attn.q_proj"
    peft_layer = peft_model.base_model.model.get_submodule(name)
    x = torch.randn(2, 5, 64)
    updates = []
    with torch.no_grad():
        for e in range(3):
            peft_model.set_adapter(f"e{e}")
            updates.append(peft_layer(x) - peft_layer.base_layer(x))
        layer = composed.layers[name]
        layer.routing = torch.full((2, 12), 1 / 3)
        torch.testing.assert_close(layer.delta(x), torch.stack(updates).mean(0), atol=ATOL, rtol=0)
    # Whole model: the uniform mixture is the model with the experts' mean delta W (peft's "cat" merge at 1/E).
    peft_model.add_weighted_adapter(["e0", "e1", "e2"], [1 / 3] * 3, "mean", combination_type="cat")
    peft_model.set_adapter("mean")
    with composed.routing(composed.uniform(3)):
        torch.testing.assert_close(logits(composed.model, batch), logits(peft_model, batch), atol=ATOL, rtol=0)


def test_a_mixed_batch_equals_each_sample_run_alone(tiny_base, composed):
    tok = tiny_base.tokenizer
    texts = ["### Task\nSum the values of xs.", "### Task\nReverse", "### Solution\nreturn s[::-1]\n# walk"]
    torch.manual_seed(3)
    weights = torch.rand(3, len(composed.module_names), composed.entries) * 2
    weights[1] = composed.one_expert(2, 1)[0]
    tok.padding_side = "left"
    padded = tok(texts, return_tensors="pt", padding=True, return_token_type_ids=False)
    with composed.routing(weights):
        together = logits(composed.model, padded)
    for i, text in enumerate(texts):
        alone = tok([text], return_tensors="pt", return_token_type_ids=False)
        with composed.routing(weights[i : i + 1]):
            own = logits(composed.model, alone)
        torch.testing.assert_close(together[i, -own.shape[1] :], own[0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("mode", [
    {"do_sample": True, "top_k": 1, "num_return_sequences": 3},
    {"num_beams": 2, "num_return_sequences": 2},
])
def test_generate_keeps_each_prompts_weights_on_its_expanded_rows(tiny_base, composed, mode):
    tok = tiny_base.tokenizer
    # Equal-length prompts: the comparison is about routing, not about padding.
    ids = [tok(t)["input_ids"][:6] for t in ["### Task\nSum the values of xs.", "### Task\nGive data backwards."]]
    prompts = {"input_ids": torch.tensor(ids), "attention_mask": torch.ones(2, 6, dtype=torch.long)}
    weights = torch.stack([composed.one_expert(0, 1)[0], composed.one_expert(2, 1)[0]])
    kwargs = dict(max_new_tokens=8, pad_token_id=tok.pad_token_id, **mode)
    together = composed.generate(weights, **prompts, **kwargs)
    per_prompt = mode["num_return_sequences"]
    assert together.shape[0] == 2 * per_prompt
    for i in range(2):
        alone = composed.generate(weights[i : i + 1], **{k: v[i : i + 1] for k, v in prompts.items()}, **kwargs)
        torch.testing.assert_close(together[i * per_prompt : (i + 1) * per_prompt], alone)
    # The two experts really decode differently, so the check above could have failed.
    assert not torch.equal(together[0], together[per_prompt])


def test_routing_is_cleared_after_the_block(composed, batch):
    with composed.routing(composed.uniform(3)):
        logits(composed.model, batch)
    with pytest.raises(RoutingError, match="without routing weights"):
        logits(composed.model, batch)
    with pytest.raises(ValueError, match=r"\[batch, 6, 12\]"):
        composed.set_routing(torch.ones(3, 12))


def test_adapters_that_cannot_compose_are_refused_with_the_reason(random_experts, make_expert):
    with pytest.raises(ExpertMismatchError, match="differ in r"):
        load_experts([random_experts[0], make_expert("rank8", r=8)])
    with pytest.raises(ExpertMismatchError, match="differ in lora_alpha"):
        load_experts([random_experts[0], make_expert("alpha4", lora_alpha=4)])
    with pytest.raises(ExpertMismatchError, match="differ in target_modules"):
        load_experts([random_experts[0], make_expert("qv", target_modules=["q_proj", "v_proj"])])
    with pytest.raises(ExpertMismatchError, match="use_dora=true"):
        load_experts([random_experts[0], make_expert("dora", use_dora=True)])
    with pytest.raises(ExpertMismatchError, match="adapts other modules"):
        load_experts([random_experts[0], make_expert("layer0", layers_to_transform=[0])])
    with pytest.raises(FileNotFoundError, match="not a peft adapter folder"):
        load_experts([random_experts[0], random_experts[0] + "-missing"])


def test_former_and_latter_customize_half_the_layers_and_leave_the_rest_base(tiny_base, random_experts, batch):
    stack = load_experts(random_experts)
    former = inject(load_base(tiny_base), stack, layers="former")
    latter = inject(load_base(tiny_base), stack, layers="latter")
    assert all(".layers.0." in n for n in former.module_names) and len(former.module_names) == 3
    assert all(".layers.1." in n for n in latter.module_names) and len(latter.module_names) == 3
    assert isinstance(latter.model.get_submodule("model.layers.0.self_attn.q_proj"), torch.nn.Linear)
    with latter.routing(latter.zeros(3)):
        torch.testing.assert_close(logits(latter.model, batch), logits(load_base(tiny_base), batch), atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="cannot tell the layer"):
        select_modules(["lm_head"], "former")
