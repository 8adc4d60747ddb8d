"""A loop computes on the GPU its process holds and on the CPU otherwise; bf16 where the GPU has it.

No CUDA here: torch's answers are monkeypatched, so these tests fail if CPU were hard-coded (a
machine with CUDA would pick it) and if a GPU were taken by a process Ray gave none.
"""

from __future__ import annotations

import pytest
import torch

from bdc_ray.training import choose_device, choose_dtype, train_device, weight_dtype, worker_device
from bdc_ray.training import device as device_module


def test_auto_is_cuda_when_cuda_is_there_and_the_process_holds_a_gpu():
    assert choose_device("auto", cuda_available=True, gpus_held=None).type == "cuda"  # no Ray: what torch sees
    assert choose_device("auto", cuda_available=True, gpus_held=1.0).type == "cuda"
    assert choose_device("auto", cuda_available=True, gpus_held=0.5).type == "cuda"  # a fraction is still a GPU


def test_auto_is_cpu_without_cuda_or_without_a_gpu_given_by_ray():
    assert choose_device("auto", cuda_available=False, gpus_held=None).type == "cpu"
    assert choose_device("auto", cuda_available=False, gpus_held=1.0).type == "cpu"
    # A Ray worker given no GPU on a GPU node must not take the GPU a neighbour holds.
    assert choose_device("auto", cuda_available=True, gpus_held=0.0).type == "cpu"


def test_an_explicit_device_is_kept_and_cuda_without_cuda_is_refused():
    assert choose_device("cpu", cuda_available=True, gpus_held=1.0) == torch.device("cpu")
    assert choose_device("cuda:1", cuda_available=True, gpus_held=0.0) == torch.device("cuda:1")
    with pytest.raises(ValueError, match="no CUDA"):
        choose_device("cuda", cuda_available=False, gpus_held=None)


def test_a_train_rank_keeps_ray_trains_gpu_unless_torch_has_no_cuda():
    # Ray Train answers cuda:<local index> whenever the rank holds a GPU, CUDA or not (a node that
    # only declares num_gpus, as Ray's local autoscaling cluster's gpu nodes do).
    assert train_device(torch.device("cuda:1"), cuda_available=True) == torch.device("cuda:1")
    assert train_device(torch.device("cuda:0"), cuda_available=False) == torch.device("cpu")
    assert train_device(torch.device("cpu"), cuda_available=True) == torch.device("cpu")


def test_bf16_on_a_gpu_that_supports_it_fp32_elsewhere():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert choose_dtype(cuda, "auto", bf16_supported=True) is torch.bfloat16
    assert choose_dtype(cuda, "bf16", bf16_supported=True) is torch.bfloat16
    assert choose_dtype(cuda, "fp32", bf16_supported=True) is torch.float32
    assert choose_dtype(cuda, "auto", bf16_supported=False) is torch.float32
    # CPU weights stay fp32: a bf16 CPU run computes under autocast, as it always did.
    assert choose_dtype(cpu, "bf16", bf16_supported=True) is torch.float32
    assert choose_dtype(cpu, "auto", bf16_supported=True) is torch.float32
    with pytest.raises(ValueError, match="does not support"):
        choose_dtype(cuda, "bf16", bf16_supported=False)
    with pytest.raises(ValueError, match="unknown precision"):
        choose_dtype(cuda, "fp16", bf16_supported=True)  # type: ignore[arg-type]


def test_the_process_reading_follows_torch(monkeypatch):
    monkeypatch.setattr(device_module, "held_gpus", lambda: None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert worker_device().type == "cuda"
    assert weight_dtype(torch.device("cuda")) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert weight_dtype(torch.device("cuda")) is torch.float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert worker_device().type == "cpu"


def test_a_ray_worker_given_no_gpu_computes_on_the_cpu_even_where_cuda_exists(monkeypatch):
    monkeypatch.setattr(device_module, "held_gpus", lambda: 0.0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert worker_device().type == "cpu"
    monkeypatch.setattr(device_module, "held_gpus", lambda: 1.0)
    assert worker_device().type == "cuda"


def test_held_gpus_is_none_in_a_driver_and_what_ray_assigned_in_a_task(ray_local):
    import ray

    assert device_module.held_gpus() is None  # the test process is a driver: it holds what it sees

    @ray.remote(num_cpus=1, num_gpus=0)
    def held() -> float | None:
        from bdc_ray.training import device

        return device.held_gpus()

    assert ray.get(held.remote()) == 0.0
