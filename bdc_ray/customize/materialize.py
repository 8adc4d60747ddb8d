"""Fold one routing vector into a plain peft LoRA folder of rank E*r (for vLLM and for export).

A customized solver for one problem IS a rank-(E*r) LoRA: A = A_cat, B = B_cat diag(w). peft
scales an adapter by lora_alpha / r, and the new r is E*r, so the folder's lora_alpha is chosen
as alpha_expert / r_expert * E*r to keep the experts' scale. Engines that only load adapter
folders (vLLM's LoRARequest, `PeftModel.from_pretrained`) then give the composed model's output.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from bdc_ray.customize.inject import ComposedLoRA

_CARRIED_KEYS = ("target_modules", "layers_to_transform", "layers_pattern", "base_model_name_or_path", "task_type")
"""Fields copied from the experts' config: they decide WHERE the adapter goes, which must not change."""


def materialize(composed: ComposedLoRA, weights: torch.Tensor, out_dir: str | os.PathLike[str]) -> Path:
    """Write `weights` ([M, E*r], one problem) as a peft adapter folder at `out_dir` (local).

    Written to a staging folder and renamed into place, so a reader (a vLLM worker picking the
    folder up by path) never sees a half-written adapter.
    """
    from peft import LoraConfig
    from safetensors.torch import save_file

    if weights.shape != (len(composed.module_names), composed.entries):
        raise ValueError(
            f"materialize takes one problem's weights [{len(composed.module_names)}, {composed.entries}], "
            f"got {tuple(weights.shape)}"
        )
    template = composed.experts.adapter_config
    placement = {key: template[key] for key in _CARRIED_KEYS if template.get(key) is not None}
    if len(composed.module_names) < len(composed.experts.a_cat):
        # Only some layers are customized: name exactly those modules, the others stay base layers.
        placement = {k: v for k, v in placement.items() if k not in ("layers_to_transform", "layers_pattern")}
        placement["target_modules"] = list(composed.module_names)
    rank = composed.entries
    config = LoraConfig(r=rank, lora_alpha=composed.experts.scale * rank, lora_dropout=0.0, **placement)
    tensors = {}
    for i, (name, layer) in enumerate(composed.layers.items()):
        w = weights[i].detach().to(device=layer.b_cat.device, dtype=layer.b_cat.dtype)
        tensors[f"base_model.model.{name}.lora_A.weight"] = layer.a_cat.detach().cpu().contiguous()
        tensors[f"base_model.model.{name}.lora_B.weight"] = (layer.b_cat * w).detach().cpu().contiguous()

    final = Path(out_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        config.save_pretrained(str(staging))
        save_file(tensors, str(staging / "adapter_model.safetensors"))
        (staging / "bdc_routing.json").write_text(
            json.dumps({"experts": composed.experts.names, "modules": composed.module_names, "weights": weights.tolist()})
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
