"""A hypernetwork checkpoint: its weights plus everything needed to rebuild the customized solver.

`<folder>/hypernet.safetensors` holds the weights; `<folder>/hypernet.json` the architecture,
which layers it customizes (and their module names, to catch a mismatched base or expert set),
the base model and experts it was trained over, the embedder and centroids of its features, and
its training metrics. The JSON is written last: a folder with `hypernet.json` is complete.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from bdc_ray import storage
from bdc_ray.artifacts.hypernet import META_FILE, is_complete
from bdc_ray.customize.config import Layers
from bdc_ray.customize.hypernet import HyperNetArch, HyperNetwork

WEIGHTS_FILE = "hypernet.safetensors"
FORMAT_VERSION = 1


class ExpertRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    path: str
    cluster: int | None = Field(
        None, description="The cluster (index into `centroids`) the expert was trained on; None in checkpoints "
        "written before it was recorded (hard routing then needs the experts manifest)."
    )


class HypernetMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    arch: dict[str, Any] = Field(description="HyperNetArch fields.")
    layers: Layers
    module_names: list[str] = Field(description="The customized modules, in the order of the weights' module axis.")
    base_model: str
    experts: list[ExpertRef]
    embedder: str
    centroids: list[list[float]]
    settings: dict[str, Any] = Field(default_factory=dict, description="The hyperparameters it was trained with.")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Validation losses, best step, history.")

    @property
    def hypernet_arch(self) -> HyperNetArch:
        return HyperNetArch(**self.arch)


def save_checkpoint(folder: str, state: dict[str, torch.Tensor], meta: HypernetMeta) -> None:
    """Write the weights, then the metadata (the completion marker), atomically each."""
    from safetensors.torch import save

    storage.write_bytes_atomic(storage.join(folder, WEIGHTS_FILE), save({k: v.contiguous() for k, v in state.items()}))
    storage.write_text_atomic(storage.join(folder, META_FILE), meta.model_dump_json(indent=2) + "\n")


def load_meta(folder: str) -> HypernetMeta:
    if not is_complete(folder):
        raise FileNotFoundError(f"no hypernetwork checkpoint at {folder} (missing {META_FILE})")
    meta = HypernetMeta.model_validate_json(storage.read_text(storage.join(folder, META_FILE)))
    if meta.format_version != FORMAT_VERSION:
        raise ValueError(f"{folder}: checkpoint format {meta.format_version}, this code reads {FORMAT_VERSION}")
    return meta


def load_checkpoint(folder: str) -> tuple[HyperNetwork, HypernetMeta]:
    """The hypernetwork (eval mode) and its metadata."""
    from safetensors.torch import load

    meta = load_meta(folder)
    fs, path = storage.filesystem(storage.join(folder, WEIGHTS_FILE))
    with fs.open(path, "rb") as fh:
        state = load(fh.read())
    hypernet = HyperNetwork(meta.hypernet_arch)
    hypernet.load_state_dict(state)
    return hypernet.eval(), meta
