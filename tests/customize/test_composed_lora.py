"""The composed layer's identities on its own (no model): DESIGN.md section 4's normalisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bdc_ray.customize.composed_lora import ComposedLoRALinear, RoutingError, merged_weight

E, R, D_IN, D_OUT, SCALE = 3, 4, 12, 10, 2.0


@pytest.fixture
def parts():
    torch.manual_seed(0)
    base = nn.Linear(D_IN, D_OUT)
    a = [torch.randn(R, D_IN) for _ in range(E)]
    b = [torch.randn(D_OUT, R) for _ in range(E)]
    layer = ComposedLoRALinear(base, torch.cat(a, 0), torch.cat(b, 1), SCALE)
    return base, a, b, layer


def expert_update(a, b, x):
    """What peft computes for one expert: scale * B (A x)."""
    return SCALE * (x @ a.T) @ b.T


def route(layer, w, x):
    layer.routing = w
    return layer(x)


def test_uniform_weights_are_the_mean_of_the_experts(parts):
    base, a, b, layer = parts
    x = torch.randn(2, 5, D_IN)
    out = route(layer, torch.full((2, E * R), 1.0 / E), x)
    mean = torch.stack([expert_update(a[e], b[e], x) for e in range(E)]).mean(0)
    torch.testing.assert_close(out, base(x) + mean)


def test_weights_on_one_experts_ranks_are_that_expert(parts):
    base, a, b, layer = parts
    x = torch.randn(2, 5, D_IN)
    for e in range(E):
        w = torch.zeros(2, E * R)
        w[:, e * R : (e + 1) * R] = 1.0
        torch.testing.assert_close(route(layer, w, x), base(x) + expert_update(a[e], b[e], x))


def test_zero_weights_are_the_base_layer(parts):
    base, _, _, layer = parts
    x = torch.randn(3, D_IN)
    torch.testing.assert_close(route(layer, torch.zeros(3, E * R), x), base(x))


def test_each_row_of_a_mixed_batch_equals_the_row_run_alone(parts):
    _, _, _, layer = parts
    x = torch.randn(4, 6, D_IN)
    w = torch.rand(4, E * R) * 2
    batched = route(layer, w, x)
    for i in range(4):
        torch.testing.assert_close(batched[i : i + 1], route(layer, w[i : i + 1], x[i : i + 1]))


def test_the_composed_pass_is_the_merged_linear_map(parts):
    base, _, _, layer = parts
    x = torch.randn(1, 5, D_IN)
    w = torch.rand(E * R)
    expected = x @ merged_weight(layer, w).T + base.bias
    torch.testing.assert_close(route(layer, w[None], x), expected)


def test_dropout_acts_in_training_only():
    torch.manual_seed(1)
    layer = ComposedLoRALinear(nn.Linear(D_IN, D_OUT), torch.randn(E * R, D_IN), torch.randn(D_OUT, E * R), SCALE, 0.5)
    x, w = torch.randn(2, D_IN), torch.ones(2, E * R)
    layer.eval()
    torch.testing.assert_close(route(layer, w, x), route(layer, w, x))
    layer.train()
    assert not torch.allclose(route(layer, w, x), route(layer, w, x))


def test_weights_get_gradients(parts):
    _, _, _, layer = parts
    w = torch.full((2, E * R), 1.0 / E, requires_grad=True)
    route(layer, w, torch.randn(2, 3, D_IN)).sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_missing_or_misshaped_weights_fail_loudly(parts):
    _, _, _, layer = parts
    x = torch.randn(2, 3, D_IN)
    with pytest.raises(RoutingError, match="without routing weights"):
        layer(x)
    with pytest.raises(RoutingError, match="num_return_sequences"):
        route(layer, torch.ones(1, E * R), x)
    with pytest.raises(RoutingError, match=r"\[batch, 12\]"):
        route(layer, torch.ones(2, 5), x)


def test_shapes_that_do_not_fit_the_layer_are_refused():
    with pytest.raises(ValueError, match="do not fit"):
        ComposedLoRALinear(nn.Linear(D_IN, D_OUT), torch.randn(E * R, D_IN + 1), torch.randn(D_OUT, E * R), SCALE)
