"""Where a training loop or a solver computes: on a GPU its process holds, else on the CPU.

On a cluster Ray hands a GPU to a Tune trial, a Train worker, a held-out task or a Serve replica
(`num_gpus`, `use_gpu`), but nothing tells the loop inside to use it: a loop that hard-codes CPU
trains a 7B student on the CPU beside an idle A10G. Inside a Ray task or actor the GPUs it was
GIVEN decide (a process given none must not take a GPU a neighbour holds on the same node);
outside Ray (a laptop, a driver) the GPU torch sees is the process's own.

Weights go to bf16 on a GPU that supports it (Ampere and later): a 7B model in fp32 (28 GB) does
not fit one 24 GB A10G. On the CPU they stay fp32, what every CPU run and tiny build always used
(a bf16 CPU run computes in bf16 under autocast, its weights stay fp32).

A Ray Train worker keeps Ray Train's own device (`ray.train.torch.get_device()`: the local index
of the GPU the rank holds), unless torch has no CUDA: a node that declares GPUs it does not have
(Ray's local autoscaling cluster gives its `gpu` nodes `num_gpus`, cluster/README.md) hands out
GPU ids with nothing behind them, and Ray Train still answers `cuda:0` (`train_device`).

The choice itself (`choose_device`, `choose_dtype`, `train_device`) is pure, so it is tested
without CUDA; the few lines that read torch and Ray (`worker_device`, `train_worker_device`,
`weight_dtype`) only feed it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

Precision = Literal["auto", "fp32", "bf16"]
"""auto: bf16 where the device supports it, fp32 elsewhere; fp32 / bf16: as asked."""


def choose_device(requested: str, *, cuda_available: bool, gpus_held: float | None) -> "torch.device":
    """`requested` unless it is "auto"; auto is CUDA when CUDA is present and this process holds a
    GPU (`gpus_held` None: not a Ray worker, the process holds what it sees), else the CPU."""
    import torch

    if requested != "auto":
        device = torch.device(requested)
        if device.type == "cuda" and not cuda_available:
            raise ValueError(f"device {requested!r} was asked for, but torch sees no CUDA device here")
        return device
    if cuda_available and (gpus_held is None or gpus_held > 0):
        return torch.device("cuda")
    return torch.device("cpu")


def train_device(ray_device: "torch.device", *, cuda_available: bool) -> "torch.device":
    """Ray Train's device for a rank, or the CPU where torch sees no CUDA (a GPU only declared)."""
    import torch

    if ray_device.type == "cuda" and not cuda_available:
        return torch.device("cpu")
    return ray_device


def choose_dtype(device: "torch.device", precision: Precision, *, bf16_supported: bool) -> "torch.dtype":
    """The weights' dtype on `device`: bf16 on a GPU that has it (auto or bf16), fp32 otherwise."""
    import torch

    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"unknown precision {precision!r}; use 'auto', 'fp32' or 'bf16'")
    if device.type != "cuda" or precision == "fp32":
        return torch.float32
    if bf16_supported:
        return torch.bfloat16
    if precision == "bf16":
        raise ValueError(f"bf16 was asked for, but {device} does not support it (pre-Ampere GPU); use fp32")
    return torch.float32


def held_gpus() -> float | None:
    """GPUs Ray assigned to this process; None when it is no Ray task or actor (a driver, a script)."""
    if "ray" not in sys.modules:
        return None
    import ray

    if not ray.is_initialized():
        return None
    context = ray.get_runtime_context()
    if context.worker.mode != ray.WORKER_MODE:
        return None
    return float(context.get_assigned_resources().get("GPU", 0.0))


def worker_device(requested: str = "auto") -> "torch.device":
    """The device this process should compute on (see the module docstring)."""
    import torch

    return choose_device(requested, cuda_available=torch.cuda.is_available(), gpus_held=held_gpus())


def train_worker_device() -> "torch.device":
    """Where this Ray Train rank computes (inside a Train worker; see `train_device`)."""
    import ray.train.torch
    import torch

    return train_device(ray.train.torch.get_device(), cuda_available=torch.cuda.is_available())


def weight_dtype(device: "torch.device", precision: Precision = "auto") -> "torch.dtype":
    """The dtype to load weights in on `device` (bf16 support read from torch)."""
    import torch

    supported = device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return choose_dtype(device, precision, bf16_supported=supported)
