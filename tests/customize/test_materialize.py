"""A materialised adapter is an ordinary peft folder that reproduces the composed model."""

from __future__ import annotations

import json

import torch
from peft import PeftModel

from bdc_ray.customize.inject import inject, load_experts
from bdc_ray.customize.materialized import materialize
from tests.customize.conftest import ALPHA, R, load_base


def test_a_folded_routing_vector_loads_in_peft_with_the_same_logits(tiny_base, random_experts, tmp_path):
    composed = inject(load_base(tiny_base), load_experts(random_experts))
    torch.manual_seed(5)
    weights = 4 * torch.softmax(torch.randn(len(composed.module_names), composed.entries), dim=-1)  # r * softmax
    folder = tmp_path / "adapter"
    assert materialize(composed.experts, composed.module_names, weights, folder) == folder
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["r"] == 3 * R and config["lora_alpha"] / config["r"] == ALPHA / R
    assert json.loads((folder / "bdc_routing.json").read_text())["modules"] == composed.module_names

    tok = tiny_base.tokenizer
    tok.padding_side = "left"
    batch = tok(["### Task\nSum the values of xs.", "### Task\nReverse"], return_tensors="pt", padding=True,
                return_token_type_ids=False)
    with torch.no_grad(), composed.routing(weights.expand(2, -1, -1)):
        expected = composed.model(**batch).logits
    peft_model = PeftModel.from_pretrained(load_base(tiny_base), str(folder)).eval()
    with torch.no_grad():
        got = peft_model(**batch).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    # The weights mattered: the base model alone is far from it.
    with torch.no_grad():
        assert (load_base(tiny_base)(**batch).logits - expected).abs().max() > 1e-2


def test_materialising_again_replaces_the_folder(tiny_base, random_experts, tmp_path):
    composed = inject(load_base(tiny_base), load_experts(random_experts))
    folder = tmp_path / "adapter"
    materialize(composed.experts, composed.module_names, composed.uniform(1)[0], folder)
    materialize(composed.experts, composed.module_names, composed.one_expert(1, 1)[0], folder)
    routing = json.loads((folder / "bdc_routing.json").read_text())["weights"]
    assert routing[0][R : 2 * R] == [1.0] * R and sum(routing[0]) == R
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]


def test_a_partly_customized_model_materialises_only_its_layers(tiny_base, random_experts, tmp_path):
    composed = inject(load_base(tiny_base), load_experts(random_experts), layers="latter")
    weights = composed.one_expert(0, 1)[0] * 0.5
    folder = materialize(composed.experts, composed.module_names, weights, tmp_path / "latter")
    assert sorted(json.loads((folder / "adapter_config.json").read_text())["target_modules"]) == sorted(
        composed.module_names
    )
    batch = tiny_base.tokenizer(["### Task\nSum the values of xs."], return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad(), composed.routing(weights[None]):
        expected = composed.model(**batch).logits
    with torch.no_grad():
        got = PeftModel.from_pretrained(load_base(tiny_base), str(folder)).eval()(**batch).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
