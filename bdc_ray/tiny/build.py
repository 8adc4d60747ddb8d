"""Tiny code models trained from scratch on the synthetic suite, saved in Hugging Face format.

Nothing can be downloaded on the CPU machines, so the project makes its own models:

    path = build_tiny(TinyModelConfig(seed=0), "runs/models")
    llm = TransformersLLM(str(path))

A build is a function of its config: training runs a fixed number of optimizer steps from a
fixed seed over data in a seeded order, so the same config on the same number of threads gives
bit-identical weights however busy the machine. Wall time only enters as a safety cap, see
`budget_s`. That is what makes the cache sound: `out_root/<name>-<hash>/` is reused whenever
the hash matches. The thread count is recorded but deliberately not hashed: it changes the
order of float sums and so the weights by ~1e-6, and keying on it would retrain a 4-minute model
just because a Ray task was given another CPU count (CPU types and library versions may shift
float kernels in the same way).

Threads: one torch thread by default. On 2 cores, two OpenMP threads next to any other busy
process trained 4x slower than one (notes/PLATFORM.md), while two builds with one thread each
ran side by side almost as fast as one alone (218 s for both, ~205 s for one, on a quiet
machine). For more than one thread, export OMP_WAIT_POLICY=PASSIVE before torch is imported
so idle OpenMP workers sleep instead of spinning on cores others need.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bdc_ray.problems.synth import FAMILIES, SynthConfig, generate_suite, training_text
from bdc_ray.threads import configure_torch_threads
from bdc_ray.tiny.data import encode, select_problems, train_tokenizer
from bdc_ray.tiny.train import train
from bdc_ray.training import Schedule, worker_device

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Part of every build hash: bump it when the data, model or training code changes what a config builds."""

INFO_FILE = "bdc_tiny.json"


class TinyModelConfig(BaseModel):
    """Everything that decides a tiny model's weights (and `name`/`budget_s`, which do not)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Folder label; not part of the hash."
    )
    seed: int = Field(0, description="Seed of initial weights, the training subset and the batch order.")
    layers: int = Field(4, ge=1, description="Decoder layers.")
    hidden: int = Field(128, ge=8, description="Hidden size.")
    heads: int = Field(4, ge=1, description="Attention heads (and key/value heads); must divide `hidden`.")
    intermediate: int | None = Field(
        None, ge=8, description="MLP width; None: 8/3 of `hidden` rounded up to a multiple of 32 (Llama's ratio)."
    )
    init_std: float = Field(
        0.05,
        gt=0,
        description="Std of the initial weights. transformers' default 0.02 is tuned for wide models: at "
        "hidden 128 the 4-minute model never learned to copy names and constants from the prompt (0% "
        "held-out); 0.05 did (about 50%).",
    )
    vocab_size: int = Field(1024, ge=300, description="BPE vocabulary including the 256 byte tokens and 3 specials.")
    context: int = Field(256, ge=32, description="Longest sequence in tokens; longer training examples are dropped.")
    steps: int = Field(
        750, ge=1, description="Optimizer steps; at the defaults about 4 minutes on one quiet core (~6,500 tokens/s)."
    )
    budget_s: float = Field(
        300.0,
        gt=0,
        description="Safety cap on the whole build in seconds; a build stopped by it is saved but is not "
        "reproducible (a warning says so). Not part of the hash.",
    )
    lr: float = Field(3e-3, gt=0, description="Peak AdamW learning rate.")
    warmup: int = Field(50, ge=0, description="Linear warm-up steps before the cosine decay.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay on matrices (not on norms).")
    tokens_per_step: int = Field(
        2048, ge=64, description="Padded tokens per optimizer step (a batch of similar-length examples)."
    )
    families: list[str] | None = Field(
        None, description=f"Families of suite.train to train on (default: all of {', '.join(FAMILIES)})."
    )
    train_fraction: float = Field(
        1.0, gt=0, le=1, description="Share of each family's training tasks to use, drawn with `seed`."
    )
    family_weights: dict[str, float] | None = Field(
        None,
        description="Emphasis per family (a family not named weighs 1): the heaviest family trains on train_fraction "
        "of its tasks, a family weighing w on w / (heaviest weight) of that. Teachers that differ in emphasis differ "
        "in what they are good at. Hashed only when set, so recipes older than the field keep their hash.",
    )
    synth: SynthConfig = Field(
        default_factory=lambda: SynthConfig(train_per_family=1000),
        description="The suite; only its train split is ever used for training.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TinyModelConfig:
        if self.hidden % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide hidden ({self.hidden})")
        if self.families is not None:
            available = self.synth.families or list(FAMILIES)
            missing = [f for f in self.families if f not in available]
            if missing or not self.families:
                raise ValueError(f"families {missing or self.families} are not in the suite's families {available}")
        if self.family_weights is not None:
            trained = self.families or self.synth.families or list(FAMILIES)
            unknown = [f for f in self.family_weights if f not in trained]
            if unknown:
                raise ValueError(f"family_weights names {unknown}, which this model does not train on ({trained})")
            bad = {f: w for f, w in self.family_weights.items() if not w > 0}
            if bad:
                raise ValueError(f"family_weights must be > 0, got {bad}")
        return self

    @property
    def mlp_width(self) -> int:
        return self.intermediate or 32 * math.ceil(self.hidden * 8 / 3 / 32)


class TinyBuildInfo(BaseModel):
    """`bdc_tiny.json`: what was built, and how the build went."""

    model_config = ConfigDict(extra="forbid")

    format_version: int
    config_hash: str
    config: TinyModelConfig
    complete: bool = Field(description="False when budget_s stopped training before `steps`.")
    steps_done: int
    final_loss: float | None = Field(
        description="Mean target-token loss over the last stretch of steps (None: no step was trained)."
    )
    loss_curve: list[tuple[int, float]] = Field(description="(step, mean loss since the previous point).")
    parameters: int
    train_tasks: int
    dropped_tasks: int = Field(description="Training tasks longer than the context, left out.")
    data_sha256: str = Field(description="Digest of the training texts, to tell which suite a model saw.")
    tokens: int = Field(description="Non-padding tokens trained on.")
    train_s: float
    wall_s: float = Field(description="The whole build: suite, tokenizer, training and saving.")
    tokens_per_s: float
    threads: int = Field(description="Torch threads used; weights are bit-identical only for equal counts.")


_HASHED_WHEN_SET = ("family_weights",)
"""Fields added after models were built and cached: left out of the hash while unset (None), so an
older recipe keeps its hash (and its cached build) and a recipe that sets one gets a new hash."""


def config_hash(config: TinyModelConfig) -> str:
    """SHA-256 of what decides the weights: the config without `name` and `budget_s`, and FORMAT_VERSION."""
    unset = {name for name in _HASHED_WHEN_SET if getattr(config, name) is None}
    payload = {"format_version": FORMAT_VERSION, "config": config.model_dump(mode="json", exclude={"name", "budget_s", *unset})}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def build_dir(config: TinyModelConfig, out_root: str | Path) -> Path:
    """Where `build_tiny` puts (or finds) the model of `config`."""
    return Path(out_root) / f"{config.name or 'tiny'}-{config_hash(config)[:12]}"


def load_build_info(path: str | Path) -> TinyBuildInfo:
    return TinyBuildInfo.model_validate_json((Path(path) / INFO_FILE).read_text())


def build_tiny(
    config: TinyModelConfig, out_root: str | Path, *, threads: int | None = 1, progress: bool = True
) -> Path:
    """Train (or reuse) the model of `config` under `out_root`; returns its folder, loadable by path.

    `threads`: torch threads while training, restored afterwards; None follows OMP_NUM_THREADS
    (what Ray sets from a task's num_cpus). The model is written to a temporary folder and
    renamed into place only when complete, so an interrupted build never looks finished.
    """
    final = build_dir(config, out_root)
    if _reusable(final, config):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        info = _build_into(staging, config, threads, progress)
        try:
            os.rename(staging, final)
        except OSError:
            # The folder exists: a concurrent build of the same config finished first (keep it), or a
            # budget-cut build this call may not reuse (replace it).
            if _reusable(final, config):
                shutil.rmtree(staging)
                return final
            shutil.rmtree(final)
            os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not info.complete:
        _warn_incomplete(final, info)
    return final


def built_tiny(config: TinyModelConfig, out_root: str | Path) -> Path | None:
    """The folder of a finished build of `config` under `out_root` (what `build_tiny` would reuse),
    else None; reads the folder only, so a caller can skip scheduling a build that has nothing to do."""
    final = build_dir(config, out_root)
    return final if _reusable(final, config) else None


def _reusable(folder: Path, config: TinyModelConfig) -> bool:
    """A finished build of the same hash; a budget-cut one only for a call allowing no more time."""
    try:
        info = load_build_info(folder)
    except (OSError, ValueError):
        return False
    if info.config_hash != config_hash(config):
        return False
    if info.complete:
        return True
    if info.config.budget_s < config.budget_s:
        log.warning(
            "rebuilding %s: it was cut by a %.0f s budget, this call allows %.0f s",
            folder,
            info.config.budget_s,
            config.budget_s,
        )
        return False
    _warn_incomplete(folder, info)
    return True


def _warn_incomplete(folder: Path, info: TinyBuildInfo) -> None:
    message = (
        f"tiny model {folder} stopped at its {info.config.budget_s:.0f} s budget after {info.steps_done} of "
        f"{info.config.steps} steps: it is NOT reproducible from its config (a faster or quieter machine trains "
        "more steps). Raise budget_s, lower steps, or build on a quieter machine."
    )
    log.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _build_into(folder: Path, config: TinyModelConfig, threads: int | None, progress: bool) -> TinyBuildInfo:
    import torch
    import transformers

    started = time.monotonic()
    previous_threads = torch.get_num_threads()
    used_threads = configure_torch_threads(threads)
    try:
        suite = generate_suite(config.synth)
        problems = select_problems(
            suite.train, config.families, config.train_fraction, config.seed, config.family_weights
        )
        texts = [training_text(p) for p in problems]
        tokenizer = train_tokenizer(texts, config.vocab_size)
        tokenizer.model_max_length = config.context
        examples, dropped = encode(problems, tokenizer, config.context)
        if not examples:
            raise ValueError(f"no training example fits the context of {config.context} tokens")

        torch.manual_seed(config.seed)
        # Built on the CPU (the seed fixes the init), trained where this task computes.
        model = transformers.LlamaForCausalLM(_llama_config(config, tokenizer)).to(worker_device())
        report = train(
            model,
            examples,
            tokenizer.pad_token_id,
            Schedule(config.steps, config.lr, config.warmup, config.tokens_per_step, config.weight_decay),
            seed=config.seed,
            deadline=started + config.budget_s,
            progress=progress,
            label=config.name or "tiny",
        )
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    finally:
        torch.set_num_threads(previous_threads)

    info = TinyBuildInfo(
        format_version=FORMAT_VERSION,
        config_hash=config_hash(config),
        config=config,
        complete=not report.budget_hit,
        steps_done=report.steps_done,
        final_loss=report.final_loss,
        loss_curve=report.loss_curve,
        parameters=sum(p.numel() for p in model.parameters()),
        train_tasks=len(examples),
        dropped_tasks=dropped,
        data_sha256=hashlib.sha256("\0".join(texts).encode()).hexdigest(),
        tokens=report.tokens,
        train_s=round(report.seconds, 2),
        wall_s=round(time.monotonic() - started, 2),
        tokens_per_s=round(report.tokens_per_second, 1),
        threads=used_threads,
    )
    (folder / INFO_FILE).write_text(info.model_dump_json(indent=2))
    return info


def _llama_config(config: TinyModelConfig, tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden,
        intermediate_size=config.mlp_width,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.heads,
        max_position_embeddings=config.context,
        tie_word_embeddings=True,
        initializer_range=config.init_std,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
