"""Every knob of the experts stage: which base model, the LoRA shape, the optimisation, how each
run is scaled on Ray Train, and whether it runs through DeepSpeed.

All experts of a run share one LoRA shape (r, alpha, target modules): the Customize stage stacks
their A and B matrices into one rank-(E*r) adapter, which only works when every expert adapts the
same modules with the same rank and scale.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bdc_ray.resources import non_negative


class LoraSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    r: int = Field(8, ge=1, description="LoRA rank of every expert (shared: the composition stacks experts' ranks).")
    lora_alpha: int = Field(16, ge=1, description="LoRA scale numerator; the update is scaled by lora_alpha / r.")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input during training.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "v_proj"],
        min_length=1,
        description="Module names that get a LoRA (the paper adapts the attention query and value projections).",
    )

    @field_validator("target_modules")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"target_modules lists a module twice: {value}")
        return value


class ScalingSection(BaseModel):
    """One Ray Train run per expert, each with this ScalingConfig and FailureConfig."""

    model_config = ConfigDict(extra="forbid")

    num_workers: int = Field(2, ge=1, description="Ray Train workers (data-parallel ranks) per expert run.")
    resources_per_worker: dict[str, float] = Field(
        default_factory=lambda: {"CPU": 1.0},
        description="Ray resources of each worker, e.g. {CPU: 1} or {CPU: 4, GPU: 1}; its CPU count is the "
        "worker's torch thread count.",
    )
    use_gpu: bool = Field(False, description="One GPU per worker (NCCL); False: CPU workers with gloo.")
    torch_backend: Literal["nccl", "gloo"] | None = Field(
        None,
        description="The runs' torch.distributed backend (Ray Train's TorchConfig.backend). None: Ray's choice, "
        "NCCL when the workers hold GPUs, gloo otherwise; gloo where the GPUs are only declared and torch has "
        "no CUDA (cluster/local_override.yaml on Ray's local autoscaling cluster).",
    )
    max_failures: int = Field(
        2, ge=-1, description="Worker-group restarts per run from its last checkpoint before the run fails (-1: no limit)."
    )
    max_concurrent_runs: int | None = Field(
        None,
        ge=1,
        description="Runs in flight at once; the others wait. None: as many as the cluster's CPUs/GPUs can hold "
        "together (at least one), so no idle run controllers pile up.",
    )

    @field_validator("resources_per_worker")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        return non_negative(value)

    def worker_resources(self) -> dict[str, float]:
        """What one worker asks Ray for, as Ray Train's ScalingConfig resolves it: the given
        resources (no CPU when none is named) and one GPU when `use_gpu` names none."""
        per_worker = dict(self.resources_per_worker)
        if self.use_gpu:
            per_worker.setdefault("GPU", 1.0)
        return per_worker

    def runs_that_fit(self, cluster_resources: dict[str, float]) -> int:
        """How many runs' worker groups `cluster_resources` hold at the same time (at least one):
        the concurrency of `max_concurrent_runs: null`, taken from the cluster as it is when the
        stage starts."""
        fits = [
            math.floor(cluster_resources.get(resource, 0.0) / (amount * self.num_workers) + 1e-9)
            for resource, amount in self.worker_resources().items()
            if amount > 0
        ]
        return max(1, min(fits) if fits else 1)

    @model_validator(mode="after")
    def _gpu_needs_use_gpu(self) -> "ScalingSection":
        # Ray's ScalingConfig refuses this too, but only when the stage starts, hours into a run.
        if self.resources_per_worker.get("GPU", 0) > 0 and not self.use_gpu:
            raise ValueError("resources_per_worker asks for a GPU but use_gpu is false: set use_gpu: true")
        return self


class ExpertsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_model: str | None = Field(
        None,
        description="Base model folder (or hub name, loaded offline) every expert adapts. None: the caller "
        "passes one (bdc run: models.student, else the first agent's weights).",
    )
    lora: LoraSection = Field(default_factory=LoraSection)
    lr: float = Field(
        2e-3, gt=0, description="Peak AdamW learning rate (tiny models need far more than the ~2e-4 usual for 7B)."
    )
    warmup: int = Field(10, ge=0, description="Linear warm-up steps before the cosine decay.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay on the LoRA matrices.")
    steps: int = Field(
        200, ge=1, description="Optimizer steps of EVERY run (experts and the all-data baseline alike: equal budgets)."
    )
    micro_batch_tokens: int = Field(
        2048, ge=16, description="Padded tokens per micro batch per worker; batches group similar lengths."
    )
    grad_accum: int = Field(1, ge=1, description="Micro batches per worker accumulated into one optimizer step.")
    clip_norm: float = Field(1.0, gt=0, description="Gradient norm clipping.")
    context: int | None = Field(
        None, ge=16, description="Longest training sequence in tokens; longer rows are dropped. None: the model's."
    )
    checkpoint_every: int = Field(
        50, ge=1, description="Steps between checkpoints; a restarted worker group resumes from the last one."
    )
    validation_share: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Share of each run's rows held out (chosen by a hash of the prompt) to choose the schedule on: "
        "the saved adapter is the one of the validation pass with the lowest loss, not the last step's. 0: off, "
        "the last step is saved.",
    )
    eval_every: int | None = Field(
        None, ge=1, description="Steps between validation passes (and at the last step); None: checkpoint_every."
    )
    keep_checkpoints: int = Field(2, ge=1, description="Checkpoints kept per run in Ray Train's storage.")
    deepspeed: bool = Field(True, description="Train through DeepSpeed (ZeRO); False: plain torch DDP.")
    zero_stage: int = Field(2, ge=0, le=3, description="DeepSpeed ZeRO stage (0 = plain data parallel).")
    zero: dict[str, Any] = Field(
        default_factory=dict,
        description="More of DeepSpeed's `zero_optimization` beside the stage, for GPU clusters (overlap_comm, "
        "contiguous_gradients, bucket sizes, offload_optimizer / offload_param, stage3_* knobs); validated by "
        "DeepSpeed's own ZeRO schema when the config is loaded.",
    )
    dtype: Literal["fp32", "bf16"] = Field(
        "fp32", description="Training precision; bf16 keeps fp32 master weights under DeepSpeed, autocast otherwise."
    )
    min_rows: int = Field(1, ge=1, description="A cluster with fewer training rows gets no expert (logged).")
    verify_adapter: bool = Field(
        True,
        description="Rank 0 reloads the saved adapter with PeftModel.from_pretrained and checks it reproduces the "
        "trained model's logits before the expert counts as done.",
    )
    seed: int = Field(0, description="Seed of LoRA initialisation, dropout and the batch order.")
    scaling: ScalingSection = Field(default_factory=ScalingSection)
    worker_env: dict[str, str] = Field(
        default_factory=dict,
        description="Extra environment variables of every training worker, over the defaults (HF_HUB_OFFLINE=1, "
        "OMP_WAIT_POLICY=PASSIVE, and the driver's TORCH_EXTENSIONS_DIR if set, where DeepSpeed's comm op is cached).",
    )

    @field_validator("zero")
    @classmethod
    def _deepspeed_accepts(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            return value  # nothing to check: the common case loads no DeepSpeed (and no torch)
        if "stage" in value:
            raise ValueError("set the stage with zero_stage, not zero.stage")
        from deepspeed.runtime.zero.config import DeepSpeedZeroConfig
        from pydantic import ValidationError

        try:
            DeepSpeedZeroConfig(**value)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise ValueError(f"DeepSpeed's zero_optimization refuses it: {problems}") from None
        return value

    @model_validator(mode="after")
    def _validation_needs_whole_weights(self) -> "ExpertsConfig":
        # The best pass's LoRA matrices are copied from each rank's own parameters; ZeRO-3 splits
        # them across ranks, so a copy would hold a shard.
        if self.validation_share > 0 and self.deepspeed and self.zero_stage == 3:
            raise ValueError("validation_share needs whole parameters on every rank: use zero_stage 2 or less")
        return self

    @property
    def validation_every(self) -> int:
        return self.eval_every or self.checkpoint_every
