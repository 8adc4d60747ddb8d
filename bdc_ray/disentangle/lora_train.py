"""The LoRA training loop of one expert, the same in one plain process and in a Ray Train worker.

What differs between the two is behind `Stepper` (how one micro batch is back-propagated and how
the optimizer steps: plain torch, DDP, or a DeepSpeed engine); the loop itself, the learning-rate
schedule and the batch order are shared, so a run on Ray trains exactly what the same settings
train in a single process.

The batch order is a pure function of (examples, seed, rank, world size, step): a worker group
restarted from a checkpoint at step s skips exactly the micro batches of steps < s and continues
on the batches an uninterrupted run would have seen, so a resumed run does not revisit or skip data.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator, Protocol, Sequence

from bdc_ray.disentangle.expert_config import ExpertsConfig, LoraSection
from bdc_ray.training import (
    Example, Schedule, collate, epoch_batches, learning_rate, masked_loss, validation_loss, weight_dtype, worker_device,
)

CURVE_POINTS = 20
"""Points of the loss curve kept in the manifest (each the mean over a stretch of steps)."""


@dataclass(frozen=True)
class LoopSettings:
    steps: int
    lr: float
    warmup: int
    weight_decay: float
    grad_accum: int
    micro_batch_tokens: int
    clip_norm: float
    seed: int

    @classmethod
    def from_config(cls, cfg: ExpertsConfig) -> LoopSettings:
        return cls(
            steps=cfg.steps,
            lr=cfg.lr,
            warmup=cfg.warmup,
            weight_decay=cfg.weight_decay,
            grad_accum=cfg.grad_accum,
            micro_batch_tokens=cfg.micro_batch_tokens,
            clip_norm=cfg.clip_norm,
            seed=cfg.seed,
        )

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.steps, self.lr, self.warmup, self.micro_batch_tokens, self.weight_decay)


@dataclass
class LoopState:
    """Everything a resumed run needs besides the weights and optimizer: it lives in checkpoints."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    resumed_from: list[int] = field(default_factory=list)
    tokens: int = 0
    samples: int = 0
    validation: list[tuple[int, float]] = field(default_factory=list)
    """(step, validation loss) of every validation pass."""
    best_step: int | None = None
    """The pass with the lowest validation loss: its weights are the ones saved."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LoopState:
        state = cls(**data)
        state.validation = [tuple(point) for point in state.validation]  # JSON gives lists
        return state

    @property
    def best_validation_loss(self) -> float | None:
        return min((loss for _, loss in self.validation), default=None)

    def loss_curve(self, points: int = CURVE_POINTS) -> list[tuple[int, float]]:
        """(last step of a stretch, mean loss over it), about `points` stretches."""
        every = max(1, len(self.losses) // points)
        curve = []
        for start in range(0, len(self.losses), every):
            chunk = self.losses[start : start + every]
            curve.append((start + len(chunk), round(sum(chunk) / len(chunk), 5)))
        return curve

    @property
    def final_loss(self) -> float | None:
        if not self.losses:
            return None
        tail = self.losses[-max(1, len(self.losses) // CURVE_POINTS) :]
        return round(sum(tail) / len(tail), 5)


def split_validation(pairs: Sequence[tuple[str, str]], share: float) -> tuple[list[int], list[int]]:
    """(training, validation) indices of `pairs`: a row is held out when the SHA-256 of its prompt
    falls in the lowest `share` of the hash range, so the split is the same on every rank, in every
    restart and for every run that trains on that row. With share > 0 at least one row is held out
    and at least one is trained on."""
    if share <= 0 or len(pairs) < 2:
        return list(range(len(pairs))), []
    position = [int(hashlib.sha256(prompt.encode()).hexdigest()[:12], 16) / 16**12 for prompt, _ in pairs]
    held = [i for i, p in enumerate(position) if p < share]
    if not held:
        held = [min(range(len(pairs)), key=position.__getitem__)]
    if len(held) == len(pairs):
        held.remove(max(held, key=position.__getitem__))
    chosen = set(held)
    return [i for i in range(len(pairs)) if i not in chosen], held


class BestByValidation:
    """Validation passes during training, keeping a copy of the LoRA matrices of the best one, so
    a run saves the adapter of its best schedule instead of the last step's (which may have fitted
    its few rows to zero). The copy lives in memory (LoRA matrices are small) and in checkpoints."""

    def __init__(self, module, examples: Sequence[Example], pad_id: int, every: int, last_step: int, device=None):
        self.module, self.examples, self.pad_id = module, examples, pad_id
        self.every, self.last_step, self.device = every, last_step, device
        self.best: dict | None = None

    def due(self, step: int) -> bool:
        return bool(self.examples) and (step % self.every == 0 or step == self.last_step)

    def observe(self, state: LoopState) -> None:
        """A validation pass at `state.step`; the weights are kept when its loss is the lowest so far."""
        loss = round(validation_loss(self.module, self.examples, self.pad_id, device=self.device), 6)
        self.module.train()
        best = state.best_validation_loss
        state.validation.append((state.step, loss))
        if best is None or loss < best:
            state.best_step = state.step
            self.best = {n: p.detach().to("cpu", copy=True) for n, p in self.module.named_parameters() if p.requires_grad}

    def restore_best(self) -> None:
        """Put the best pass's matrices back into the module (before it is saved)."""
        if self.best is None:
            return
        import torch

        params = dict(self.module.named_parameters())
        with torch.no_grad():
            for name, value in self.best.items():
                params[name].copy_(value.to(params[name].device, params[name].dtype))


class Stepper(Protocol):
    """One way of applying gradients: plain torch (and DDP) or a DeepSpeed engine."""

    def set_lr(self, lr: float) -> None: ...

    def micro_step(self, ids, mask, labels, last: bool) -> float:
        """Forward and backward of one micro batch; `last`: the final one before optimizer_step."""

    def optimizer_step(self) -> None: ...


def trainable_parameters(model) -> list:
    return [p for p in model.parameters() if p.requires_grad]


def make_optimizer(model, settings: LoopSettings):
    """AdamW over the LoRA matrices only: a torch optimizer, so DeepSpeed on CPU compiles no op for it."""
    import torch

    return torch.optim.AdamW(
        trainable_parameters(model), lr=settings.lr, betas=(0.9, 0.999), weight_decay=settings.weight_decay
    )


class TorchStepper:
    """Plain torch: the model may be a DDP wrapper, whose gradient all-reduce is skipped on all
    but the last micro batch of a step (`no_sync`)."""

    def __init__(self, model, optimizer, settings: LoopSettings, bf16: bool = False) -> None:
        self.model = model
        self.optimizer = optimizer
        self.settings = settings
        self.bf16 = bf16
        self._params = trainable_parameters(model)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def micro_step(self, ids, mask, labels, last: bool) -> float:
        import torch

        sync = contextlib.nullcontext() if last or not hasattr(self.model, "no_sync") else self.model.no_sync()
        device_type = ids.device.type
        autocast = torch.autocast(device_type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with sync:
            with autocast:
                loss = masked_loss(self.model(input_ids=ids, attention_mask=mask).logits, labels)
            (loss / self.settings.grad_accum).backward()
        return loss.item()

    def optimizer_step(self) -> None:
        import torch

        torch.nn.utils.clip_grad_norm_(self._params, self.settings.clip_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def lora_model(base_model: str, lora: LoraSection, seed: int, dtype=None):
    """The base model (frozen) with fresh LoRA matrices on `lora.target_modules`; init fixed by `seed`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype or torch.float32)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.lora_alpha,
        lora_dropout=lora.lora_dropout,
        target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def micro_batches(
    examples: Sequence[Example], tokens: int, seed: int, *, rank: int = 0, world: int = 1, skip: int = 0
) -> Iterator[list[int]]:
    """This rank's endless stream of micro batches (indices into `examples`), after `skip` of them.

    Every rank draws the same global order (length-bucketed epochs, training.epoch_batches) and
    takes every `world`-th batch, so the ranks see disjoint data and the order never depends on
    how many processes drew it before.
    """

    def every_batch() -> Iterator[list[int]]:
        for epoch in itertools.count():
            yield from epoch_batches(examples, tokens, random.Random(f"bdc-experts-batches:{seed}:{epoch}"))

    return itertools.islice(every_batch(), rank + skip * world, None, world)


def train_loop(
    stepper: Stepper,
    examples: Sequence[Example],
    pad_id: int,
    settings: LoopSettings,
    *,
    state: LoopState | None = None,
    rank: int = 0,
    world: int = 1,
    device=None,
    average: Callable[[float], float] | None = None,
    on_step: Callable[[LoopState], None] | None = None,
    progress: bool = False,
    label: str = "lora",
) -> LoopState:
    """Train from `state.step` to `settings.steps`; `on_step` runs after every optimizer step
    (checkpointing and reporting live there). `average` turns this rank's step loss into the
    mean over ranks (the default keeps the local one)."""
    from tqdm.auto import tqdm

    if not examples:
        raise ValueError(f"{label}: no training example (every row was longer than the context?)")
    state = state or LoopState()
    stream = micro_batches(
        examples, settings.micro_batch_tokens, settings.seed, rank=rank, world=world, skip=state.step * settings.grad_accum
    )
    with tqdm(
        total=settings.steps, initial=state.step, desc=label, disable=not progress, mininterval=2.0, dynamic_ncols=True
    ) as bar:
        for step in range(state.step, settings.steps):
            stepper.set_lr(learning_rate(step, settings.schedule))
            losses = []
            for k in range(settings.grad_accum):
                batch = [examples[i] for i in next(stream)]
                ids, mask, labels = collate(batch, pad_id)
                if device is not None:
                    ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
                losses.append(stepper.micro_step(ids, mask, labels, last=k == settings.grad_accum - 1))
                state.tokens += int(mask.sum())
                state.samples += len(batch)
            stepper.optimizer_step()
            loss = sum(losses) / len(losses)
            state.losses.append(average(loss) if average else loss)
            state.step = step + 1
            if on_step is not None:
                on_step(state)
            bar.update(1)
            bar.set_postfix(loss=f"{state.losses[-1]:.3f}", refresh=False)
    return state


@dataclass
class PlainRun:
    """A finished single-process run: the trained peft model and how training went."""

    model: object
    state: LoopState
    seconds: float


def train_plain(
    base_model: str,
    examples: Sequence[Example],
    pad_id: int,
    cfg: ExpertsConfig,
    *,
    on_step: Callable[[LoopState], None] | None = None,
    progress: bool = False,
    label: str = "lora",
) -> PlainRun:
    """One expert in this process, no Ray and no DeepSpeed: the reference the Ray runs are measured
    against; on the GPU this process holds, else the CPU."""
    settings = LoopSettings.from_config(cfg)
    device = worker_device()
    model = lora_model(base_model, cfg.lora, cfg.seed, dtype=weight_dtype(device, cfg.dtype)).to(device)
    model.train()
    stepper = TorchStepper(model, make_optimizer(model, settings), settings, bf16=cfg.dtype == "bf16")
    started = time.monotonic()
    state = train_loop(
        stepper, examples, pad_id, settings, device=device, on_step=on_step, progress=progress, label=label
    )
    model.eval()
    return PlainRun(model=model, state=state, seconds=time.monotonic() - started)
