"""Training the hypernetwork: next-token loss on SFT responses through the frozen composed model.

Only the hypernetwork learns. Each batch's features give its rows' routing weights, the weights
route the composed model's forward, and the loss gradient flows back through the frozen base and
experts into the hypernetwork. The composed model stays in eval mode (no dropout in the base or
on the LoRA input): the gradient then measures the routing alone, and validation loss at step 0
is exactly the uniform mixture's loss, the baseline a trained router must beat.

The best checkpoint is the hypernetwork state with the lowest validation loss seen, evaluated
every `eval_every` steps; a fixed number of steps (not wall time) decides how much is trained.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from bdc_ray import training
from bdc_ray.customize.checkpoint import ExpertRef, HypernetMeta
from bdc_ray.customize.config import HyperNetSection, TrainSection
from bdc_ray.customize.data import RoutedExample, TrainingData, encode_rows
from bdc_ray.customize.hypernet import HyperNetArch, HyperNetwork
from bdc_ray.customize.inject import ComposedLoRA
from bdc_ray.customize.loading import build_composed
from bdc_ray.timing import phase
from bdc_ray.training import Schedule, collate, epoch_batches, learning_rate, masked_loss, model_context

_CLIP_NORM = 1.0
LOAD_PHASE = "base model + experts loaded, composed"


@dataclass(frozen=True)
class EvalPoint:
    step: int
    val_loss: float
    train_loss: float | None
    """Mean training loss since the previous point (None at step 0)."""


@dataclass
class TrainOutcome:
    history: list[EvalPoint] = field(default_factory=list)
    best_step: int = 0
    best_val_loss: float = float("inf")
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    tokens: int = 0
    seconds: float = 0.0

    @property
    def initial_val_loss(self) -> float:
        """Validation loss of the untrained (uniform) hypernetwork."""
        return self.history[0].val_loss


def _loss(composed: ComposedLoRA, hypernet: HyperNetwork, examples, features: torch.Tensor, pad_id: int):
    """Mean loss over the response tokens of one batch, each row under its own routing weights."""
    ids, mask, labels = collate(examples, pad_id)
    device = composed.device
    logits = composed(hypernet(features), input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    return masked_loss(logits, labels.to(device))


def validation_loss(
    composed: ComposedLoRA,
    hypernet: HyperNetwork,
    examples: Sequence[RoutedExample],
    features: torch.Tensor,
    pad_id: int,
    tokens_per_step: int,
) -> float:
    """The training kit's validation loss of the composed model, each row routed by `hypernet`."""
    if not examples:
        raise ValueError("no validation examples")
    device = composed.device

    def routed(batch: list[int], ids, mask):
        return composed(hypernet(features[batch]), input_ids=ids.to(device), attention_mask=mask.to(device)).logits

    return training.validation_loss(hypernet, examples, pad_id, tokens_per_step, forward=routed)


def train_hypernet(
    composed: ComposedLoRA,
    hypernet: HyperNetwork,
    train: tuple[Sequence[RoutedExample], torch.Tensor],
    val: tuple[Sequence[RoutedExample], torch.Tensor],
    settings: TrainSection,
    *,
    pad_id: int,
    on_eval: Callable[[EvalPoint, TrainOutcome, bool], None] | None = None,
    progress: bool = False,
) -> TrainOutcome:
    """Train `hypernet` in place; returns the history and the best (lowest validation loss) state.

    `train` and `val` are (examples, features aligned with them). `on_eval(point, outcome,
    improved)` runs after every validation pass (Ray Tune reports and checkpoints from it; a
    scheduler that stops the trial simply ends the process).
    """
    from tqdm.auto import tqdm

    train_examples, train_features = train
    val_examples, val_features = val
    if not train_examples:
        raise ValueError("no training examples (all rows longer than the context?)")
    torch.manual_seed(settings.seed)
    composed.model.eval()
    decay = [p for p in hypernet.parameters() if p.ndim >= 2]
    no_decay = [p for p in hypernet.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
    )
    schedule = Schedule(settings.steps, settings.lr, settings.warmup, settings.tokens_per_step, settings.weight_decay)
    rng = random.Random(f"bdc-customize-batches:{settings.seed}")
    outcome = TrainOutcome()
    start = time.monotonic()

    def evaluate(step: int, train_loss: float | None) -> None:
        point = EvalPoint(step, validation_loss(composed, hypernet, val_examples, val_features, pad_id,
                                                settings.tokens_per_step), train_loss)
        outcome.history.append(point)
        improved = point.val_loss < outcome.best_val_loss
        if improved:
            outcome.best_step, outcome.best_val_loss = step, point.val_loss
            outcome.best_state = copy.deepcopy(hypernet.state_dict())
        outcome.seconds = time.monotonic() - start
        if on_eval is not None:
            on_eval(point, outcome, improved)

    evaluate(0, None)
    hypernet.train()
    batches: list[list[int]] = []
    window: list[float] = []
    with tqdm(total=settings.steps, desc="hypernet", disable=not progress, mininterval=2.0, dynamic_ncols=True) as bar:
        for step in range(settings.steps):
            if not batches:
                batches = epoch_batches(train_examples, settings.tokens_per_step, rng)
            batch = batches.pop()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, schedule)
            loss = _loss(composed, hypernet, [train_examples[i] for i in batch], train_features[batch], pad_id)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(hypernet.parameters(), _CLIP_NORM)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            outcome.tokens += sum(len(train_examples[i].ids) for i in batch)
            window.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
            done = step + 1
            if done % settings.eval_every == 0 or done == settings.steps:
                evaluate(done, sum(window) / len(window))
                window = []
    hypernet.eval()
    return outcome


@dataclass(frozen=True)
class Snapshot:
    """The best state so far, as a checkpoint would hold it."""

    state: dict[str, torch.Tensor]
    meta: HypernetMeta


OnEval = Callable[[EvalPoint, "Snapshot | None"], None]
"""Called after every validation pass; the snapshot is given only when the point is a new best."""


def fit_hypernet(
    data: TrainingData,
    hypernet_cfg: HyperNetSection,
    train_cfg: TrainSection,
    *,
    on_eval: OnEval | None = None,
    progress: bool = False,
    device: str = "auto",
) -> tuple[TrainOutcome, Snapshot]:
    """Build the composed model, train a fresh hypernetwork on `data`, return the best snapshot.

    `device` "auto" is the GPU this process holds (a Tune trial given `gpus_per_trial`), else the CPU."""
    with phase(LOAD_PHASE):
        composed, tokenizer = build_composed(data.base_model, data.expert_paths, data.expert_names, hypernet_cfg.layers,
                                             device)
    device = composed.device
    context = model_context(tokenizer, composed.model.config, data.context)

    def encoded(rows, features):
        examples = encode_rows(rows, tokenizer, context)
        return examples, torch.from_numpy(features[[e.row for e in examples]]).to(device)

    train, val = encoded(data.train_rows, data.train_features), encoded(data.val_rows, data.val_features)
    if not val[0]:
        raise ValueError(f"no validation row fits the context of {context} tokens")
    torch.manual_seed(train_cfg.seed)
    arch = HyperNetArch(
        in_dim=data.train_features.shape[1], n_modules=len(composed.module_names), n_experts=composed.n_experts,
        r=composed.r, hidden=hypernet_cfg.hidden, depth=hypernet_cfg.depth, temperature=hypernet_cfg.temperature,
        dropout=hypernet_cfg.dropout,
    )
    hypernet = HyperNetwork(arch).to(device)

    def snapshot(outcome: TrainOutcome) -> Snapshot:
        meta = HypernetMeta(
            arch=arch.to_dict(), layers=hypernet_cfg.layers, module_names=composed.module_names,
            base_model=data.base_model,
            experts=[ExpertRef(name=n, path=p, cluster=c)
                     for n, p, c in zip(data.expert_names, data.expert_paths, data.expert_clusters, strict=True)],
            embedder=data.embedder, centroids=np.asarray(data.centroids, dtype=float).tolist(),
            settings={"hypernet": hypernet_cfg.model_dump(), "train": train_cfg.model_dump()},
            metrics={
                "best_val_loss": outcome.best_val_loss, "best_step": outcome.best_step,
                "initial_val_loss": outcome.initial_val_loss, "train_examples": len(train[0]),
                "val_examples": len(val[0]), "history": [asdict(p) for p in outcome.history],
            },
        )
        return Snapshot({k: v.detach().cpu() for k, v in outcome.best_state.items()}, meta)

    def report(point: EvalPoint, outcome: TrainOutcome, improved: bool) -> None:
        if on_eval is not None:
            on_eval(point, snapshot(outcome) if improved else None)

    outcome = train_hypernet(composed, hypernet, train, val, train_cfg, pad_id=tokenizer.pad_token_id,
                             on_eval=report, progress=progress)
    return outcome, snapshot(outcome)
