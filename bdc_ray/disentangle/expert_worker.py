"""What every Ray Train worker of one expert run executes (`train_expert`, the train_loop_per_worker).

Each rank loads the base model with fresh LoRA matrices, tokenizes the run's pairs, and trains its
share of every step through DeepSpeed (ZeRO stage from the config, a torch AdamW as the client
optimizer so CPU needs no op build beyond DeepSpeed's shared-memory comm op) or plain DDP.

Fault tolerance is Ray Train's: every `checkpoint_every` steps EVERY rank calls
`ray.train.report(..., checkpoint=...)` with the files it wrote (under ZeRO each rank owns its
optimizer shard, and a shard not reported is lost); Ray merges them into one checkpoint folder.
A restarted worker group finds it with `ray.train.get_checkpoint()`, every rank reloads its own
shard, and the step count continues where the checkpoint left it.

With `validation_share`, rows chosen by a hash of their prompt are held out, every
`validation_every` steps each rank measures the validation loss (the same on every rank: the
parameters are whole under DDP and ZeRO-2), and the LoRA matrices of the best pass so far are
kept (in memory, and by rank 0 in every checkpoint); they are the ones saved at the end.

The run ends with one more checkpoint from rank 0 alone: `adapter/` (a standard peft folder,
`save_pretrained`) and `summary.json` (the loss curve, steps, resumes, which shard files each
rank wrote, the reload check). The driver copies the adapter out of it into the experts folder,
so only the driver writes there.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bdc_ray.disentangle.expert_config import ExpertsConfig
from bdc_ray.disentangle.lora_train import (
    BestByValidation,
    LoopSettings,
    LoopState,
    TorchStepper,
    lora_model,
    make_optimizer,
    split_validation,
    train_loop,
    trainable_parameters,
)
from bdc_ray.threads import configure_torch_threads
from bdc_ray.training import collate, encode_pairs, masked_loss, model_context, train_worker_device, weight_dtype

log = logging.getLogger(__name__)

FAIL_ONCE_ENV = "BDC_EXPERTS_FAIL_ONCE"
"""Fault injection for tests and drills: `<run name>:<rank>:<step>:<marker file>` makes that rank's
process die (os._exit) after that step, once: the marker file records that it happened."""

_FAIL_DELAY_S = 2.5 * float(os.environ.get("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "2.0"))
"""The injected death waits this long first. Ray Train's controller collects reported checkpoints
when it polls the workers (every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S): a process dying within one
poll of its report loses that checkpoint, and the run resumes from the one before (measured)."""

ADAPTER_DIR = "adapter"
SUMMARY_FILE = "summary.json"
LOOP_STATE_FILE = "loop_state.json"
TORCH_STATE_FILE = "torch_state.pt"
RNG_FILE = "rng_rank{rank}.pt"
BEST_FILE = "best_lora.pt"
"""The LoRA matrices of the best validation pass so far (rank 0, when validation is on)."""
DS_TAG = "state"
PROBE_FILE = "bdc_probe.safetensors"
"""Kept inside the adapter folder (peft and vLLM read only adapter_config.json and
adapter_model.safetensors): a few training prompts and the trained model's logits on them, so
anyone can check that a reload of the adapter reproduces the model that was trained."""

_PROBE_EXAMPLES = 4
_RELOAD_TOLERANCE = {"fp32": 1e-4, "bf16": 5e-2}


def deepspeed_config(cfg: ExpertsConfig, world: int) -> dict[str, Any]:
    """Batches are token-bucketed, so DeepSpeed's micro batch size is nominal (1); what it
    needs for real is the accumulation count, which decides when `engine.step()` applies."""
    return {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": cfg.grad_accum,
        "train_batch_size": world * cfg.grad_accum,
        "gradient_clipping": cfg.clip_norm,
        "zero_optimization": {"stage": cfg.zero_stage, **cfg.zero},
        "bf16": {"enabled": cfg.dtype == "bf16"},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }


class DeepSpeedStepper:
    """`engine.step()` after every micro batch: DeepSpeed applies the optimizer (after clipping
    and, under ZeRO, the reduce-scatter of gradients) only at accumulation boundaries."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def set_lr(self, lr: float) -> None:
        for group in self.engine.optimizer.param_groups:
            group["lr"] = lr

    def micro_step(self, ids, mask, labels, last: bool) -> float:
        loss = masked_loss(self.engine(input_ids=ids, attention_mask=mask).logits, labels)
        self.engine.backward(loss)
        self.engine.step()
        return loss.item()

    def optimizer_step(self) -> None:
        """Nothing left to do: the boundary `engine.step()` in micro_step already stepped."""


def train_expert(config: dict[str, Any]) -> None:
    """The Ray Train per-worker function of one expert run (config: see experts.py `_loop_config`)."""
    import ray
    import ray.train
    import ray.train.torch
    import torch
    from transformers import AutoTokenizer

    marks = {"entered": time.time(), **_process_created()}  # wall clock: the driver subtracts its launch time
    cfg = ExpertsConfig.model_validate(config["cfg"])
    name: str = config["name"]
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    configure_torch_threads(config["threads"])
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None and _is_final(checkpoint):
        log.info("%s rank %d: the run already finished (its final checkpoint is the latest)", name, rank)
        return

    # Ray Train's device for this rank: its GPU under use_gpu (the CPU where the GPU is only
    # declared and torch has no CUDA), else the CPU; the frozen base in bf16 on a GPU when the run
    # trains in bf16 (a 7B base in fp32 does not fit a 24 GB card).
    device = train_worker_device()
    load_dtype = weight_dtype(device, cfg.dtype)
    tokenizer = AutoTokenizer.from_pretrained(config["base_model"])
    model = lora_model(config["base_model"], cfg.lora, cfg.seed, dtype=load_dtype)
    marks["model_loaded"] = time.time()
    pairs = ray.get(config["pairs"])
    context_len = model_context(tokenizer, model.config, cfg.context)
    train_rows, held_rows = split_validation(pairs, cfg.validation_share)
    examples = encode_pairs(tokenizer, [pairs[i] for i in train_rows], context_len)
    val_examples = encode_pairs(tokenizer, [pairs[i] for i in held_rows], context_len)
    settings = LoopSettings.from_config(cfg)
    optimizer = make_optimizer(model, settings)
    if cfg.deepspeed:
        import deepspeed

        engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=deepspeed_config(cfg, world))
        stepper = DeepSpeedStepper(engine)
        module = engine.module
    else:
        engine = None
        wrapped = ray.train.torch.prepare_model(model, move_to_device=device)
        stepper = TorchStepper(wrapped, optimizer, settings, bf16=cfg.dtype == "bf16")
        module = wrapped.module if hasattr(wrapped, "module") else wrapped
    marks["engine_ready"] = time.time()

    tracker = BestByValidation(module, val_examples, tokenizer.pad_token_id, cfg.validation_every, cfg.steps, device)
    state = LoopState()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = _load_state(Path(folder), rank, engine, module, optimizer)
            if (Path(folder) / BEST_FILE).exists():
                tracker.best = torch.load(Path(folder) / BEST_FILE, map_location="cpu", weights_only=True)
        state.resumed_from.append(state.step)
        log.info("%s rank %d: resumed at step %d from %s", name, rank, state.step, checkpoint.path)
    module.train()
    fail_once = _fail_once_target(name, rank)
    shards: dict[str, list[str]] = {}
    samples_before = state.samples
    started = time.monotonic()

    def on_step(s: LoopState) -> None:
        marks.setdefault("first_step", time.time())
        marks["last_step"] = time.time()
        if fail_once is not None and s.step == fail_once[0]:
            fail_once[1].write_text(f"{name} rank {rank} died after step {s.step}\n")
            log.warning("%s rank %d: dying after step %d (%s)", name, rank, s.step, FAIL_ONCE_ENV)
            time.sleep(_FAIL_DELAY_S)
            os._exit(1)
        if tracker.due(s.step):
            tracker.observe(s)
        if s.step % cfg.checkpoint_every == 0 or s.step == cfg.steps:
            shards.update(_report_checkpoint(name, s, rank, world, engine, module, optimizer, tracker.best))

    state = train_loop(
        stepper, examples, tokenizer.pad_token_id, settings, state=state, rank=rank, world=world,
        device=device, average=lambda loss: _all_mean(loss, world), on_step=on_step, label=name,
    )
    train_s = time.monotonic() - started
    samples = _all_mean(float(state.samples - samples_before), world) * world
    tracker.restore_best()  # the adapter of the best validation pass, when validation is on
    module.eval()
    probe = collate(examples[:_PROBE_EXAMPLES], tokenizer.pad_token_id)
    with torch.no_grad():
        logits = module(input_ids=probe[0].to(device), attention_mask=probe[1].to(device)).logits.float().cpu()

    with tempfile.TemporaryDirectory(prefix=f"bdc-{name}-final-") as tmp:
        final = Path(tmp)
        if engine is not None and cfg.zero_stage == 3:
            import deepspeed

            # ZeRO-3 partitions parameters across ranks: gather the LoRA matrices (all ranks take part).
            with deepspeed.zero.GatheredParameters(trainable_parameters(module), modifier_rank=None):
                if rank == 0:
                    module.save_pretrained(final / ADAPTER_DIR)
        elif rank == 0:
            module.save_pretrained(final / ADAPTER_DIR)
        if rank == 0:
            _save_probe(final / ADAPTER_DIR / PROBE_FILE, probe, logits)
            diff = None
            if cfg.verify_adapter:
                reload_dtype = torch.bfloat16 if engine is not None and cfg.dtype == "bf16" else load_dtype
                diff = _reload_diff(config["base_model"], final / ADAPTER_DIR, probe, logits, reload_dtype)
                if diff > _RELOAD_TOLERANCE[cfg.dtype]:
                    raise RuntimeError(
                        f"{name}: the saved adapter does not reproduce the trained model (max logit difference "
                        f"{diff:.3g} > {_RELOAD_TOLERANCE[cfg.dtype]}): saving lost or changed weights"
                    )
            marks["final_saved"] = time.time()
            summary = {
                "name": name,
                "size": len(pairs),
                "examples": len(examples),
                "validation_examples": len(val_examples),
                "loop": state.to_dict(),
                "checkpoint_shards": shards,
                "reload_max_abs_diff": diff,
                "train_s": round(train_s, 3),
                "samples_per_s": round(samples / train_s, 3) if train_s > 0 else 0.0,
                "startup_marks": marks,
            }
            (final / SUMMARY_FILE).write_text(json.dumps(summary))
        ray.train.report(
            {"step": state.step, "final": True},
            checkpoint=ray.train.Checkpoint.from_directory(tmp) if rank == 0 else None,
            checkpoint_dir_name=f"final_{state.step:07d}",
        )


def _process_created() -> dict[str, float]:
    """When this worker's process was created (wall clock), to split the run's start-up; psutil comes
    with deepspeed, peft and accelerate."""
    try:
        import psutil

        return {"process_created": psutil.Process().create_time()}
    except Exception:  # noqa: BLE001 - a missing figure, never a failed run
        return {}


def _all_mean(value: float, world: int) -> float:
    """The mean of `value` over all ranks (a no-op with one)."""
    if world == 1:
        return value
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.item() / world


def _report_checkpoint(
    name, state: LoopState, rank: int, world: int, engine, module, optimizer, best: dict | None
) -> dict[str, list[str]]:
    """Every rank writes what it owns into its own folder and reports it; returns the files per rank."""
    import ray.train

    from bdc_ray.metrics import record_training
    import torch
    import torch.distributed as dist

    with tempfile.TemporaryDirectory(prefix=f"bdc-{name}-ckpt-") as tmp:
        folder = Path(tmp)
        if engine is not None:
            # Under ZeRO each rank saves its own optimizer (and, at stage 3, parameter) shard.
            engine.save_checkpoint(tmp, tag=DS_TAG, exclude_frozen_parameters=True)
        elif rank == 0:
            # DDP ranks hold identical replicas: one copy of the LoRA weights and optimizer is enough.
            trainable = {n for n, p in module.named_parameters() if p.requires_grad}
            lora = {n: t for n, t in module.state_dict().items() if n in trainable}
            torch.save({"lora": lora, "optimizer": optimizer.state_dict()}, folder / TORCH_STATE_FILE)
        if rank == 0:
            (folder / LOOP_STATE_FILE).write_text(json.dumps(state.to_dict()))
            if best is not None:
                torch.save(best, folder / BEST_FILE)
        # Dropout draws from each rank's generator: restoring it makes a resumed run bit-identical
        # to one that never stopped.
        torch.save(_rng_state(), folder / RNG_FILE.format(rank=rank))
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        gathered: list = [files]
        if world > 1:
            gathered = [None] * world
            dist.all_gather_object(gathered, files)
        shards = {str(r): f for r, f in enumerate(gathered)}
        log.info("%s rank %d: checkpoint at step %d holds %s", name, rank, state.step, files)
        if rank == 0:
            record_training("disentangle", name, state.losses[-1], state.step)
        ray.train.report(
            {"step": state.step, "loss": state.losses[-1], "resumed_from": list(state.resumed_from), "shards": shards},
            checkpoint=ray.train.Checkpoint.from_directory(tmp) if files else None,
            checkpoint_dir_name=f"step_{state.step:07d}",
        )
    return shards


def _rng_state() -> dict:
    import torch

    state = {"cpu": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _load_state(folder: Path, rank: int, engine, module, optimizer) -> LoopState:
    import torch

    if engine is not None:
        path, _ = engine.load_checkpoint(
            str(folder), tag=DS_TAG, load_module_strict=False, load_optimizer_states=True, load_lr_scheduler_states=False
        )
        if path is None:
            raise RuntimeError(f"DeepSpeed found no checkpoint {DS_TAG!r} in {folder}: {sorted(os.listdir(folder))}")
    else:
        saved = torch.load(folder / TORCH_STATE_FILE, map_location="cpu", weights_only=True)
        result = module.load_state_dict(saved["lora"], strict=False)
        if result.unexpected_keys:
            raise RuntimeError(f"checkpoint in {folder} holds weights this model lacks: {result.unexpected_keys[:3]}")
        optimizer.load_state_dict(saved["optimizer"])
    rng = torch.load(folder / RNG_FILE.format(rank=rank), weights_only=True)
    torch.random.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    return LoopState.from_dict(json.loads((folder / LOOP_STATE_FILE).read_text()))


def _is_final(checkpoint) -> bool:
    import pyarrow.fs

    info = checkpoint.filesystem.get_file_info(f"{checkpoint.path.rstrip('/')}/{SUMMARY_FILE}")
    return info.type != pyarrow.fs.FileType.NotFound


def _fail_once_target(name: str, rank: int) -> tuple[int, Path] | None:
    value = os.environ.get(FAIL_ONCE_ENV, "")
    if not value:
        return None
    try:
        run, target_rank, step, marker = value.split(":", 3)
        target = (int(target_rank), int(step))
    except ValueError:
        raise ValueError(f"{FAIL_ONCE_ENV}={value!r}: expected <run name>:<rank>:<step>:<marker file>") from None
    if run != name or target[0] != rank or Path(marker).exists():
        return None
    return target[1], Path(marker)


def _save_probe(path: Path, probe, logits) -> None:
    from safetensors.torch import save_file

    ids, mask, _ = probe
    save_file({"input_ids": ids.contiguous(), "attention_mask": mask.contiguous(), "logits": logits.contiguous()}, str(path))


def load_probe(adapter_dir: str | Path) -> dict:
    """The probe saved with an adapter: input_ids, attention_mask and the trained model's logits."""
    from safetensors.torch import load_file

    return load_file(str(Path(adapter_dir) / PROBE_FILE))


def _reload_diff(base_model: str, adapter_dir: Path, probe, logits, dtype) -> float:
    """Largest |logit| difference, over real (non-pad) positions, between the adapter loaded the way
    every consumer loads it (PeftModel.from_pretrained on a fresh base) and the trained model."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
    reloaded = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    ids, mask, _ = probe
    with torch.no_grad():
        again = reloaded(input_ids=ids, attention_mask=mask).logits.float()
    return float((again - logits).abs()[mask.bool()].max())
