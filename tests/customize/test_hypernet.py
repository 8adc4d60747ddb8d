"""The hypernetwork's normalisation and its uniform start."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bdc_ray.customize.features import routing_features
from bdc_ray.customize.hypernet import HyperNetArch, HyperNetwork, expert_shares
from bdc_ray.customize.inject import inject, load_experts
from tests.customize.conftest import load_base

ARCH = HyperNetArch(in_dim=19, n_modules=6, n_experts=3, r=4, hidden=16)


def test_an_untrained_hypernetwork_is_the_uniform_mixture(tiny_base, random_experts):
    hypernet = HyperNetwork(ARCH)
    weights = hypernet(torch.randn(5, ARCH.in_dim) * 3)
    torch.testing.assert_close(weights, torch.full((5, 6, 12), 1 / 3))
    composed = inject(load_base(tiny_base), load_experts(random_experts))
    batch = tiny_base.tokenizer(["### Task\nSum", "### Task\nRev"], return_tensors="pt", padding=True,
                                return_token_type_ids=False)
    with torch.no_grad():
        routed = composed(weights[:2], **batch).logits
        uniform = composed(composed.uniform(2), **batch).logits
    torch.testing.assert_close(routed, uniform)


def test_weights_are_r_times_a_softmax_per_module_and_temperature_sharpens():
    torch.manual_seed(0)
    hot = HyperNetwork(ARCH)
    torch.nn.init.normal_(hot.heads.weight, std=1.0)
    x = torch.randn(4, ARCH.in_dim)
    w = hot(x)
    assert w.shape == (4, 6, 12) and (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.full((4, 6), 4.0))
    cold = HyperNetwork(HyperNetArch(**{**ARCH.to_dict(), "temperature": 0.25}))
    cold.load_state_dict(hot.state_dict())
    assert cold(x).max(-1).values.mean() > w.max(-1).values.mean()


def test_expert_shares_sum_to_one_and_name_the_chosen_expert():
    w = torch.zeros(2, 3, 12)
    w[0, :, 4:8] = 1.0  # sample 0: expert 1 on every module
    w[1] = 1 / 3
    shares = expert_shares(w, 3)
    torch.testing.assert_close(shares, torch.tensor([[0.0, 1.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]))


def test_features_are_the_embedding_then_its_cosine_to_each_centroid():
    rng = np.random.default_rng(0)
    emb, cents = rng.normal(size=(3, 8)), rng.normal(size=(2, 8))
    feats = routing_features(emb, cents)
    assert feats.shape == (3, 10) and feats.dtype == np.float32
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    np.testing.assert_allclose(feats[:, :8], unit, rtol=1e-6)
    cos = (emb @ cents.T) / np.outer(np.linalg.norm(emb, axis=1), np.linalg.norm(cents, axis=1))
    np.testing.assert_allclose(feats[:, 8:], cos, rtol=1e-5)
    with pytest.raises(ValueError, match="different embedders"):
        routing_features(emb, rng.normal(size=(2, 5)))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="hidden must be >= 1"):
        HyperNetArch(in_dim=4, n_modules=1, n_experts=2, r=2, hidden=0)
    with pytest.raises(ValueError, match="temperature"):
        HyperNetArch(in_dim=4, n_modules=1, n_experts=2, r=2, temperature=0)
