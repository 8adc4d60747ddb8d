"""Experts in, composed layers out: load E peft adapter folders and rebuild a base model with them.

Kept apart from the layer's math (composed_lora.py), as peft keeps injection apart from its
layers. The adapters are read from their files (adapter_config.json + weights), not through a
PeftModel: composition needs the raw A and B matrices of every expert side by side, and peft's
own multi-adapter model would keep E separate layers where one stacked layer is the point.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
import torch
from torch import nn

from bdc_ray.customize.composed_lora import ComposedLoRALinear
from bdc_ray.customize.config import Layers

_PEFT_PREFIX = "base_model.model."
_A_SUFFIX, _B_SUFFIX = ".lora_A.weight", ".lora_B.weight"
_LAYER_INDEX = re.compile(r"\.(\d+)\.")


class ExpertMismatchError(ValueError):
    """Adapters that cannot be composed: different rank, alpha, targets or modules, or LoRA variants."""


@dataclass(frozen=True)
class ExpertStack:
    """E experts' LoRA matrices stacked per module, in expert order (entry e*r + j = expert e's rank j)."""

    names: list[str]
    paths: list[str]
    r: int
    lora_alpha: float
    lora_dropout: float
    target_modules: list[str]
    a_cat: dict[str, torch.Tensor]
    """module name (as in the base model) -> [E*r, d_in]"""
    b_cat: dict[str, torch.Tensor]
    """module name -> [d_out, E*r]"""
    adapter_config: dict
    """The first expert's adapter_config.json, the template of a materialised adapter."""

    @property
    def n_experts(self) -> int:
        return len(self.paths)

    @property
    def entries(self) -> int:
        return self.n_experts * self.r

    @property
    def scale(self) -> float:
        """peft's plain LoRA scaling, alpha / r, the same for every expert."""
        return self.lora_alpha / self.r


def _adapter_config(path: str) -> dict:
    file = os.path.join(path, "adapter_config.json")
    if not os.path.isfile(file):
        raise FileNotFoundError(f"{path}: not a peft adapter folder (no adapter_config.json)")
    with open(file, encoding="utf-8") as fh:
        return json.load(fh)


def _check_plain_lora(path: str, cfg: dict) -> None:
    """Refuse the LoRA variants whose update is not scale * B A (the composition's whole premise)."""
    problems = []
    if cfg.get("peft_type") != "LORA":
        problems.append(f"peft_type {cfg.get('peft_type')!r} (need LORA)")
    for flag in ("use_dora", "use_rslora", "fan_in_fan_out", "use_qalora"):
        if cfg.get(flag):
            problems.append(f"{flag}=true")
    if cfg.get("bias", "none") != "none":
        problems.append(f"bias={cfg['bias']!r}")
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
        problems.append("per-module rank_pattern/alpha_pattern")
    if cfg.get("modules_to_save"):
        problems.append(f"modules_to_save={cfg['modules_to_save']}")
    if problems:
        raise ExpertMismatchError(f"{path}: cannot compose this adapter: {', '.join(problems)}")


def _targets(cfg: dict) -> list[str] | str:
    targets = cfg.get("target_modules")
    return sorted(targets) if isinstance(targets, list) else targets


def _split_weights(path: str, state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    a, b = {}, {}
    for key, tensor in state.items():
        name = key[len(_PEFT_PREFIX) :] if key.startswith(_PEFT_PREFIX) else key
        if name.endswith(_A_SUFFIX):
            a[name[: -len(_A_SUFFIX)]] = tensor
        elif name.endswith(_B_SUFFIX):
            b[name[: -len(_B_SUFFIX)]] = tensor
        else:
            raise ExpertMismatchError(f"{path}: unexpected weight {key!r}; only linear LoRA A/B matrices compose")
    if a.keys() != b.keys():
        raise ExpertMismatchError(f"{path}: modules with A but no B or B but no A: {sorted(a.keys() ^ b.keys())}")
    return a, b


def load_experts(paths: Sequence[str], names: Sequence[str] | None = None) -> ExpertStack:
    """Read E local peft folders that share r, lora_alpha, target_modules and adapted modules."""
    from peft.utils import load_peft_weights

    if not paths:
        raise ExpertMismatchError("no expert adapters given")
    names = list(names) if names is not None else [os.path.basename(os.path.normpath(p)) for p in paths]
    if len(names) != len(paths):
        raise ValueError(f"{len(names)} names for {len(paths)} expert paths")
    configs = [_adapter_config(p) for p in paths]
    for path, cfg in zip(paths, configs):
        _check_plain_lora(path, cfg)
    first = configs[0]
    for key, read in (("r", lambda c: c.get("r")), ("lora_alpha", lambda c: c.get("lora_alpha")), ("target_modules", _targets)):
        for path, cfg in zip(paths[1:], configs[1:]):
            if read(cfg) != read(first):
                raise ExpertMismatchError(
                    f"experts differ in {key}: {paths[0]} has {read(first)!r}, {path} has {read(cfg)!r}; "
                    "composition needs one r, lora_alpha and target_modules for all experts"
                )
    r = int(first["r"])
    a_parts: dict[str, list[torch.Tensor]] = {}
    b_parts: dict[str, list[torch.Tensor]] = {}
    for path in paths:
        a, b = _split_weights(path, load_peft_weights(path, device="cpu"))
        if a_parts and a.keys() != a_parts.keys():
            raise ExpertMismatchError(
                f"{path} adapts other modules than {paths[0]}: {sorted(a.keys() ^ a_parts.keys())[:6]}"
            )
        for module, tensor in a.items():
            if tensor.shape[0] != r or b[module].shape[1] != r:
                raise ExpertMismatchError(f"{path}: {module} has rank {tensor.shape[0]}, the config says r={r}")
            a_parts.setdefault(module, []).append(tensor.float())
            b_parts.setdefault(module, []).append(b[module].float())
    targets = _targets(first)
    return ExpertStack(
        names=names,
        paths=list(paths),
        r=r,
        lora_alpha=float(first["lora_alpha"]),
        lora_dropout=float(first.get("lora_dropout") or 0.0),
        target_modules=targets if isinstance(targets, list) else [targets],
        a_cat={m: torch.cat(parts, dim=0) for m, parts in a_parts.items()},
        b_cat={m: torch.cat(parts, dim=1) for m, parts in b_parts.items()},
        adapter_config=first,
    )


class ComposedLoRA:
    """A base model whose adapted linear layers are ComposedLoRALinear, and their routing state.

    Weights for a batch are a tensor [batch, M, E*r], M = len(module_names) in model order.
    """

    def __init__(self, model: nn.Module, layers: dict[str, ComposedLoRALinear], experts: ExpertStack) -> None:
        self.model = model
        self.layers = layers
        self.experts = experts
        self.module_names = list(layers)
        self.n_experts = experts.n_experts
        self.r = experts.r

    @property
    def entries(self) -> int:
        return self.n_experts * self.r

    @property
    def device(self) -> torch.device:
        return next(iter(self.layers.values())).a_cat.device

    def _full(self, batch: int, value: float) -> torch.Tensor:
        return torch.full((batch, len(self.module_names), self.entries), value, device=self.device)

    def uniform(self, batch: int) -> torch.Tensor:
        """1/E on every rank (r * softmax of equal logits): the experts' average."""
        return self._full(batch, 1.0 / self.n_experts)

    def zeros(self, batch: int) -> torch.Tensor:
        """No LoRA at all: the base model."""
        return self._full(batch, 0.0)

    def one_expert(self, expert: int, batch: int) -> torch.Tensor:
        """1 on expert `expert`'s r ranks, 0 elsewhere: that expert exactly."""
        if not 0 <= expert < self.n_experts:
            raise IndexError(f"expert {expert} out of range 0..{self.n_experts - 1}")
        w = self.zeros(batch)
        w[..., expert * self.r : (expert + 1) * self.r] = 1.0
        return w

    def set_routing(self, weights: torch.Tensor | None) -> None:
        """Weights [batch, M, E*r] for every following forward (None: forwards fail until set)."""
        if weights is not None and (weights.dim() != 3 or weights.shape[1:] != (len(self.module_names), self.entries)):
            raise ValueError(
                f"routing weights must be [batch, {len(self.module_names)}, {self.entries}], got {tuple(weights.shape)}"
            )
        for i, layer in enumerate(self.layers.values()):
            layer.routing = None if weights is None else weights[:, i]

    @contextlib.contextmanager
    def routing(self, weights: torch.Tensor) -> Iterator[None]:
        """Route the forwards inside the block with `weights`; cleared afterwards, so a stale
        vector can never leak into an unrelated batch."""
        self.set_routing(weights)
        try:
            yield
        finally:
            self.set_routing(None)

    def __call__(self, weights: torch.Tensor, **inputs):
        with self.routing(weights):
            return self.model(**inputs)

    def generate(self, weights: torch.Tensor, **kwargs) -> torch.Tensor:
        """`model.generate(**kwargs)` with one weight row per prompt row.

        generate expands every prompt to max(num_beams, num_return_sequences) consecutive rows
        (repeat_interleave) before the first forward; the weights are expanded the same way here,
        so each returned sequence was decoded with its own prompt's weights. Assisted decoding
        runs a second model over other batch layouts and is refused.
        """
        if kwargs.get("assistant_model") is not None or kwargs.get("prompt_lookup_num_tokens") is not None:
            raise ValueError("assisted decoding is not supported with per-sample routing weights")
        config = copy.deepcopy(kwargs.pop("generation_config", None) or self.model.generation_config)
        unused = config.update(**kwargs)
        expand = max(config.num_beams or 1, config.num_return_sequences or 1)
        with self.routing(weights.repeat_interleave(expand, dim=0) if expand > 1 else weights):
            return self.model.generate(generation_config=config, **unused)


def select_modules(names: Sequence[str], layers: Layers) -> list[str]:
    """The adapted modules of the chosen decoder layers (the layer index is the first number in a
    module's name, `model.layers.<i>.self_attn.q_proj`); halves split at n_layers / 2."""
    if layers == "all":
        return list(names)
    index = {}
    for name in names:
        match = _LAYER_INDEX.search(name)
        if match is None:
            raise ValueError(f"cannot tell the layer of module {name!r}: use layers='all'")
        index[name] = int(match.group(1))
    half = (max(index.values()) + 1) / 2
    chosen = [n for n in names if (index[n] < half) == (layers == "former")]
    if not chosen:
        raise ValueError(f"layers={layers!r} selects none of the {len(names)} adapted modules")
    return chosen


def inject(model: nn.Module, experts: ExpertStack, layers: Layers = "all") -> ComposedLoRA:
    """Replace, in place, the experts' modules in `layers` by composed layers; freeze everything.

    Modules outside `layers` stay the plain base layers (no LoRA at all), as the reference code
    does for the layers its router does not cover. Layers are kept in the model's own module
    order, so a weight tensor's module axis means the same thing in every process that loads the
    same base and experts.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    missing = sorted(set(experts.a_cat) - order.keys())
    if missing:
        raise ExpertMismatchError(f"the experts adapt modules the base model does not have: {missing[:6]}")
    composed: dict[str, ComposedLoRALinear] = {}
    for name in select_modules(sorted(experts.a_cat, key=order.__getitem__), layers):
        base = model.get_submodule(name)
        if not isinstance(base, nn.Linear):
            raise ExpertMismatchError(f"{name} is a {type(base).__name__}; only nn.Linear layers are composed")
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        device = base.weight.device
        layer = ComposedLoRALinear(
            base, experts.a_cat[name].to(device), experts.b_cat[name].to(device), experts.scale, experts.lora_dropout
        )
        setattr(parent, child, layer)
        composed[name] = layer
    return ComposedLoRA(model, composed, experts)
