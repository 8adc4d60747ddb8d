"""Base model + expert folders -> the composed model, wherever the artifacts live.

transformers and peft read local folders only; artifacts on object storage (s3://, gs://) are
downloaded first, by each process that needs them, so a Ray Tune trial or a Serve replica on
another node never depends on a temporary copy made by the driver.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence

from fsspec.implementations.local import LocalFileSystem

from bdc_ray import storage
from bdc_ray.customize.config import Layers
from bdc_ray.customize.inject import ComposedLoRA, ExpertStack, inject, load_experts


def local_copy(path: str) -> str:
    """`path` itself when local; otherwise a downloaded copy in a fresh temporary folder."""
    fs, p = storage.filesystem(path)
    if isinstance(fs, LocalFileSystem):
        return p
    target = tempfile.mkdtemp(prefix="bdc-customize-")
    fs.get(p.rstrip("/") + "/", target, recursive=True)
    return target


def load_expert_stack(expert_paths: Sequence[str], names: Sequence[str]) -> ExpertStack:
    """The experts' matrices, stacked, from folders wherever they live."""
    return load_experts([local_copy(p) for p in expert_paths], names)


def build_composed(
    base_model: str, expert_paths: Sequence[str], names: Sequence[str], layers: Layers, device: str = "auto"
) -> tuple[ComposedLoRA, object]:
    """(composed model in eval mode, its tokenizer) from a base folder and expert folders, on
    `device` ("auto": the GPU this process holds, else the CPU), in bf16 on a GPU that has it
    (the base and experts are frozen, and a 7B base in fp32 fills a 24 GB GPU by itself)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bdc_ray.training import weight_dtype, worker_device

    target = worker_device(device)

    base = local_copy(base_model)
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"tokenizer of {base_model!r} has neither a pad nor an eos token; batching needs one")
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base, dtype=weight_dtype(target)).to(target).eval()
    return inject(model, load_expert_stack(expert_paths, names), layers), tokenizer
