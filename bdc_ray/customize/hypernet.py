"""The input-aware hypernetwork: routing features -> rank-wise expert weights per adapted module.

    w_m(x) = r * softmax(MLP_m(features(x)) / temperature)     over the E*r entries of module m

A shared trunk reads the features once; one linear head per module (stored as one matrix whose
output is split per module) gives that module's E*r logits. The heads start at zero, so an
untrained hypernetwork is exactly the uniform mixture (every entry 1/E: the experts' average),
and training moves away from the best static merge rather than from noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class HyperNetArch:
    """Everything that decides the hypernetwork's shape; saved beside its weights."""

    in_dim: int
    n_modules: int
    n_experts: int
    r: int
    hidden: int = 64
    depth: int = 1
    temperature: float = 1.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("in_dim", "n_modules", "n_experts", "r", "hidden", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"hypernetwork {name} must be >= 1, got {getattr(self, name)}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    @property
    def entries(self) -> int:
        return self.n_experts * self.r

    def to_dict(self) -> dict:
        return asdict(self)


class HyperNetwork(nn.Module):
    def __init__(self, arch: HyperNetArch) -> None:
        super().__init__()
        self.arch = arch
        # Features mix unit-norm embedding coordinates (~1/sqrt(d)) with cosines (~0.1-1): normalise
        # them so one learning rate suits both.
        layers: list[nn.Module] = [nn.LayerNorm(arch.in_dim)]
        width = arch.in_dim
        for _ in range(arch.depth):
            layers += [nn.Linear(width, arch.hidden), nn.GELU()]
            width = arch.hidden
        if arch.dropout > 0:
            layers.append(nn.Dropout(arch.dropout))
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.Linear(arch.hidden, arch.n_modules * arch.entries)
        nn.init.zeros_(self.heads.weight)
        nn.init.zeros_(self.heads.bias)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """[batch, M, E*r] head outputs before temperature and softmax."""
        return self.heads(self.trunk(features)).view(-1, self.arch.n_modules, self.arch.entries)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """[batch, M, E*r] weights; each module's row sums to r (r * softmax)."""
        return self.arch.r * torch.softmax(self.logits(features) / self.arch.temperature, dim=-1)


def expert_shares(weights: torch.Tensor, n_experts: int) -> torch.Tensor:
    """[batch, E]: each expert's share of the weight mass, averaged over modules (rows sum to 1).

    A readable summary of a routing decision (logs, the Serve response), not used by the math.
    """
    batch, modules, entries = weights.shape
    per_expert = weights.view(batch, modules, n_experts, entries // n_experts).sum(-1)
    return (per_expert / per_expert.sum(-1, keepdim=True).clamp_min(1e-12)).mean(1)
