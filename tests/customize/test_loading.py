"""Artifacts on object storage are downloaded by the process that loads them (fsspec memory://)."""

from __future__ import annotations

import os

import fsspec
import torch

from bdc_ray.customize.loading import build_composed, local_copy


def upload(local: str, url: str) -> None:
    fs = fsspec.filesystem("memory")
    for name in os.listdir(local):
        with open(os.path.join(local, name), "rb") as src, fs.open(f"{url}/{name}", "wb") as dst:
            dst.write(src.read())


def test_a_model_and_experts_on_remote_storage_compose_like_local_ones(tiny_base, random_experts):
    upload(tiny_base.path, "memory://bdc-test/base")
    for i, path in enumerate(random_experts[:2]):
        upload(path, f"memory://bdc-test/expert_{i}")
    copy = local_copy("memory://bdc-test/base")
    assert os.path.isfile(os.path.join(copy, "config.json")) and copy != tiny_base.path
    assert local_copy(tiny_base.path) == tiny_base.path
    remote, _ = build_composed("memory://bdc-test/base", ["memory://bdc-test/expert_0", "memory://bdc-test/expert_1"],
                               ["a", "b"], "all")
    local, tokenizer = build_composed(tiny_base.path, random_experts[:2], ["a", "b"], "all")
    batch = tokenizer(["### Task\nSum the values of xs."], return_tensors="pt", return_token_type_ids=False)
    weights = torch.rand(1, len(local.module_names), local.entries)
    with torch.no_grad():
        torch.testing.assert_close(remote(weights, **batch).logits, local(weights, **batch).logits)


def test_the_composed_model_goes_where_the_process_computes(tiny_base, random_experts, monkeypatch):
    """build_composed asks the training kit for the device and dtype instead of assuming the CPU:
    "meta" stands in for the GPU this machine does not have."""
    import bdc_ray.training as kit

    asked = []
    monkeypatch.setattr(kit, "worker_device", lambda requested="auto": asked.append(requested) or torch.device("meta"))
    monkeypatch.setattr(kit, "weight_dtype", lambda device, precision="auto": torch.bfloat16)
    composed, _ = build_composed(tiny_base.path, random_experts[:2], ["a", "b"], "all")
    assert asked == ["auto"]
    assert composed.device.type == "meta"
    assert {p.dtype for p in composed.model.parameters()} == {torch.bfloat16}
