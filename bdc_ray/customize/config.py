"""Every knob of the Customize stage: the data, the hypernetwork, its training, and the Ray Tune search."""

from __future__ import annotations

from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bdc_ray.resources import non_negative

Layers = Literal["all", "former", "latter"]


class HyperNetSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hidden: int = Field(64, ge=1, description="Width of the shared trunk (the reference router uses 64).")
    depth: int = Field(1, ge=1, description="Hidden layers of the trunk before the per-module heads.")
    temperature: float = Field(
        1.0, gt=0, description="Softmax temperature of the rank-wise weights; lower = sharper routing."
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout after the trunk while training.")
    layers: Layers = Field(
        "all",
        description="Decoder layers that are customized: all, former (first half) or latter (second half); "
        "the others run the plain base layers.",
    )


class TrainSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lr: float = Field(3e-3, gt=0, description="Peak AdamW learning rate of the hypernetwork.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay of the hypernetwork's matrices.")
    steps: int = Field(200, ge=1, description="Optimizer steps (the base model and experts stay frozen).")
    warmup: int = Field(10, ge=0, description="Linear warm-up steps before the cosine decay.")
    tokens_per_step: int = Field(2048, ge=16, description="Padded tokens per batch; batches group similar lengths.")
    eval_every: int = Field(
        20, ge=1, description="Steps between validation passes; the best validation loss picks the checkpoint."
    )
    seed: int = Field(0, description="Seed of the batch order and of dropout.")
    threads: int | None = Field(
        1, ge=1, description="Torch threads of a training process; None: OMP_NUM_THREADS (what Ray sets)."
    )


class TuneSection(BaseModel):
    """The Ray Tune search; each list is a choice, `lr` a log-uniform range."""

    model_config = ConfigDict(extra="forbid")

    num_samples: int = Field(8, ge=1, description="Trials (configurations drawn from the space).")
    max_concurrent_trials: int | None = Field(
        None, ge=1, description="Trials in flight at once; None: as many as cpus_per_trial allows on the cluster."
    )
    cpus_per_trial: float = Field(1.0, gt=0, description="CPUs reserved per trial (also its torch thread count).")
    gpus_per_trial: float = Field(0.0, ge=0, description="GPUs reserved per trial (a trial trains on CUDA when it holds one).")
    custom_resources_per_trial: dict[str, float] = Field(
        default_factory=dict, description="Custom Ray resources per trial, e.g. {gpu_node: 0.01} to land on GPU nodes."
    )
    lr: tuple[float, float] = Field((3e-4, 1e-2), description="Log-uniform range of the learning rate.")
    hidden: list[int] = Field(default_factory=lambda: [32, 64, 128], min_length=1, description="Trunk widths to try.")
    temperature: list[float] = Field(
        default_factory=lambda: [0.5, 1.0, 2.0], min_length=1, description="Softmax temperatures to try."
    )
    weight_decay: list[float] = Field(
        default_factory=lambda: [0.0, 0.01, 0.1], min_length=1, description="Weight decays to try."
    )
    layers: list[Layers] = Field(
        default_factory=lambda: ["all", "former", "latter"], min_length=1, description="Customized layer sets to try."
    )
    grace_period: int = Field(
        2, ge=1, description="Validation passes every trial gets before ASHA may stop it."
    )
    reduction_factor: float = Field(2.0, gt=1, description="ASHA keeps 1/reduction_factor of the trials per rung.")
    seed: int = Field(0, description="Seed of the search's random draws.")

    @field_validator("custom_resources_per_trial")
    @classmethod
    def _custom_only(cls, value: dict[str, float]) -> dict[str, float]:
        # CPUs and GPUs have their own keys; a second spelling here would silently override them.
        builtin = sorted(k for k in value if k.lower() in ("cpu", "gpu"))
        if builtin:
            raise ValueError(f"{builtin} belong in cpus_per_trial / gpus_per_trial, not custom_resources_per_trial")
        return non_negative(value)

    def trial_resources(self) -> dict[str, float]:
        """What one trial asks Ray Tune for (`tune.with_resources`): CPUs, GPUs (a trial holding
        one trains on CUDA, training.worker_device) and the custom resource of its node type."""
        return {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial, **self.custom_resources_per_trial}

    @field_validator("lr")
    @classmethod
    def _range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 < low <= high:
            raise ValueError(f"lr must be a range (low, high) with 0 < low <= high, got {value}")
        return value


class CustomizeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        "boost",
        description="Training rows: 'boost' (the run's boost/sft.jsonl), 'synthetic:<split>' (the run's "
        "synthetic suite, reference solutions) or a JSONL file of rows in sft.jsonl's shape.",
    )
    max_rows: int | None = Field(None, ge=2, description="Use only the first N training rows.")
    val_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of problems held out for validation (split by problem id)."
    )
    split_seed: int = Field(0, description="Seed of the train/validation split.")
    context: int | None = Field(
        None, ge=16, description="Longest training sequence in tokens; longer rows are dropped. None: the model's."
    )
    embedder: str | None = Field(
        None, description="Sentence embedder of the routing features; None: the one the clustering used."
    )
    tune: bool = Field(True, description="`bdc run`: search hyperparameters with Ray Tune (False: one training).")
    hypernet: HyperNetSection = Field(default_factory=HyperNetSection)
    train: TrainSection = Field(default_factory=TrainSection)
    search: TuneSection = Field(default_factory=TuneSection, description="The Ray Tune search space and scheduler.")

    def resolve_paths(self, resolve: Callable[[str], str]) -> None:
        """A rows file is found relative to the config file's folder."""
        if self.source != "boost" and not self.source.startswith("synthetic:"):
            self.source = resolve(self.source)

    @model_validator(mode="after")
    def _source(self) -> CustomizeConfig:
        if self.source.startswith("synthetic:") and self.source.split(":", 1)[1] not in ("train", "heldout", "heldout_comp"):
            raise ValueError(f"source {self.source!r}: the synthetic splits are train, heldout and heldout_comp")
        return self
