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
from collections.abc import Sequence
from pathlib import Path

import torch

from bdc_ray.customize.inject import ExpertStack

_CARRIED_KEYS = ("target_modules", "layers_to_transform", "layers_pattern", "base_model_name_or_path", "task_type")
"""Fields copied from the experts' config: they decide WHERE the adapter goes, which must not change."""


def materialize(
    experts: ExpertStack, module_names: Sequence[str], weights: torch.Tensor, out_dir: str | os.PathLike[str],
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write `weights` ([M, E*r], one problem, rows in `module_names` order) as a peft adapter
    folder at `out_dir` (local), its tensors in `dtype`.

    Reads only the experts' matrices, not a model, so a process that serves with vLLM folds
    adapters without a transformers copy of the base (`ComposedLoRA` passes its `experts` and
    `module_names`). The fold is computed in float32 and cast once. Written to a staging folder
    and renamed into place, so a reader (a vLLM worker picking the folder up by path) never sees
    a half-written adapter.
    """
    from peft import LoraConfig
    from safetensors.torch import save_file

    module_names = list(module_names)
    if weights.shape != (len(module_names), experts.entries):
        raise ValueError(
            f"materialize takes one problem's weights [{len(module_names)}, {experts.entries}], "
            f"got {tuple(weights.shape)}"
        )
    missing = [m for m in module_names if m not in experts.a_cat]
    if missing:
        raise ValueError(f"the experts do not adapt {missing[:3]}: were the weights made for other experts?")
    template = experts.adapter_config
    placement = {key: template[key] for key in _CARRIED_KEYS if template.get(key) is not None}
    if len(module_names) < len(experts.a_cat):
        # Only some layers are customized: name exactly those modules, the others stay base layers.
        placement = {k: v for k, v in placement.items() if k not in ("layers_to_transform", "layers_pattern")}
        placement["target_modules"] = module_names
    rank = experts.entries
    config = LoraConfig(r=rank, lora_alpha=experts.scale * rank, lora_dropout=0.0, **placement)
    w = weights.detach().to(device="cpu", dtype=torch.float32)
    tensors = {}
    for i, name in enumerate(module_names):
        tensors[f"base_model.model.{name}.lora_A.weight"] = experts.a_cat[name].to(dtype).contiguous()
        tensors[f"base_model.model.{name}.lora_B.weight"] = (experts.b_cat[name].float() * w[i]).to(dtype).contiguous()

    final = Path(out_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        config.save_pretrained(str(staging))
        save_file(tensors, str(staging / "adapter_model.safetensors"))
        (staging / "bdc_routing.json").write_text(
            json.dumps({"experts": experts.names, "modules": module_names, "weights": w.tolist()})
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
