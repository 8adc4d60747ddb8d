"""The math of one composed-LoRA linear layer (DESIGN.md section 4).

E experts of rank r on one linear layer are stacked into a single rank-(E*r) LoRA:
A_cat (E*r x d_in) holds every expert's A rows, B_cat (d_out x E*r) every expert's B columns,
in the same expert order. A routing vector w (E*r numbers) scales the ranks, so

    y = base(x) + scale * B_cat (w * (A_cat x)),        scale = lora_alpha / r

is one expert when w is 1 on its r ranks and 0 elsewhere, the experts' mean when w = 1/E
everywhere, and the base layer when w = 0. Because w only multiplies a rank-sized intermediate,
every row of a batch can carry its own w at the cost of one broadcast multiply: no per-request
weight merge, one forward pass for a batch of different problems.
"""

from __future__ import annotations

import torch
from torch import nn


class RoutingError(RuntimeError):
    """A composed layer ran without routing weights, or with weights that do not fit the batch."""


class ComposedLoRALinear(nn.Module):
    """`base(x) + scale * ((dropout(x) @ A_cat^T) * w) @ B_cat^T` with one `w` row per batch row.

    The routing weights are state set from outside before a forward (`routing`), because the
    layer sits deep inside a model whose forward signature cannot carry them. Expert tensors are
    non-persistent buffers: they move with `.to()`, never train, and never enter the base model's
    `state_dict`, which stays loadable as the plain base model.
    """

    def __init__(self, base: nn.Linear, a_cat: torch.Tensor, b_cat: torch.Tensor, scale: float, dropout: float = 0.0):
        super().__init__()
        entries = a_cat.shape[0]
        if a_cat.shape != (entries, base.in_features) or b_cat.shape != (base.out_features, entries):
            raise ValueError(
                f"expert shapes A_cat {tuple(a_cat.shape)} / B_cat {tuple(b_cat.shape)} do not fit a linear "
                f"layer {base.in_features} -> {base.out_features} (want ({entries}, {base.in_features}) and "
                f"({base.out_features}, {entries}))"
            )
        self.base = base
        self.register_buffer("a_cat", a_cat.to(base.weight.dtype), persistent=False)
        self.register_buffer("b_cat", b_cat.to(base.weight.dtype), persistent=False)
        self.scale = float(scale)
        # Dropout on the LoRA input, as peft applies it; nn.Dropout is the identity in eval mode.
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.routing: torch.Tensor | None = None
        """[batch, E*r] weights for the next forward; None makes a forward fail loudly."""

    @property
    def entries(self) -> int:
        return self.a_cat.shape[0]

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """The composed LoRA update alone (without the base output)."""
        w = self.routing
        if w is None:
            raise RoutingError(
                "composed LoRA layer called without routing weights: set them first "
                "(ComposedLoRA.routing(...) or ComposedLoRA.set_routing(...)); zeros give the base model"
            )
        if w.dim() != 2 or w.shape[1] != self.entries:
            raise RoutingError(f"routing weights must be [batch, {self.entries}], got {tuple(w.shape)}")
        if w.shape[0] != x.shape[0]:
            raise RoutingError(
                f"routing weights have {w.shape[0]} rows but the batch has {x.shape[0]}: rows added by "
                "generate (num_return_sequences, num_beams) need the weights expanded the same way "
                "(ComposedLoRA.generate does it)"
            )
        # One weight row per batch row, broadcast over every position between them; the scale is
        # folded into the [batch, E*r] weights, the smallest tensor of the product.
        w = (w * self.scale).to(dtype=x.dtype).view(w.shape[0], *([1] * (x.dim() - 2)), w.shape[1])
        return ((self.dropout(x) @ self.a_cat.T) * w) @ self.b_cat.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.delta(x)

    def extra_repr(self) -> str:
        return f"entries={self.entries}, scale={self.scale:g}"


def merged_weight(layer: ComposedLoRALinear, w: torch.Tensor) -> torch.Tensor:
    """The base weight with ONE routing vector folded in: W + scale * B_cat diag(w) A_cat.

    What serving without composition would have to do for every request; the benchmark's
    per-request baseline, and a check that the composed pass is that linear map.
    """
    return layer.base.weight + layer.scale * (layer.b_cat * w.to(layer.b_cat.dtype)) @ layer.a_cat
