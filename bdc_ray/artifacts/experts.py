"""`<run>/disentangle/experts/manifest.json`: which adapters exist, what each was trained on, how it went.

The manifest is the experts stage's only contract with its consumers (Customize, Serve, heldout):
they find every adapter folder, its cluster and centroid, and the LoRA shape they all share here,
without reading training internals. An entry is added only after its adapter folder is
complete, so "folder and entry present" is what marks a finished expert on re-run.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field

from bdc_ray import storage

MANIFEST_FILE = "manifest.json"
ALL_DATA = "all_data"


def expert_name(cluster: int) -> str:
    return f"expert_{cluster}"


class LoraShape(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int
    lora_alpha: int
    lora_dropout: float
    target_modules: list[str]


class TrainedAdapter(BaseModel):
    """One finished run: the all-data baseline, or (with cluster and centroid) an expert."""

    model_config = ConfigDict(extra="forbid")

    name: str
    path: str = Field(description="The peft folder (adapter_config.json + adapter_model.safetensors).")
    size: int = Field(description="Training rows (prompt/response pairs) the run was given.")
    examples: int = Field(0, description="Rows that fit the context and were trained on.")
    final_loss: float | None = Field(description="Mean training loss over the last stretch of steps.")
    steps: int
    loss_curve: list[tuple[int, float]] = Field(default_factory=list, description="(step, mean loss since the last point).")
    resumed_from: list[int] = Field(
        default_factory=list, description="Steps at which a restarted worker group picked the run up from a checkpoint."
    )
    checkpoint_shards: dict[str, list[str]] = Field(
        default_factory=dict, description="Files each rank wrote into the last checkpoint (ZeRO shards per rank)."
    )
    validation_examples: int = Field(0, description="Rows held out to choose the schedule on (0: validation off).")
    validation_curve: list[tuple[int, float]] = Field(
        default_factory=list, description="(step, validation loss) of every validation pass."
    )
    best_step: int | None = Field(None, description="The pass whose weights were saved (None: the last step's).")
    validation_loss: float | None = Field(None, description="The saved adapter's validation loss.")
    reload_max_abs_diff: float | None = Field(
        None, description="Largest logit difference between the trained model and the adapter reloaded from disk."
    )
    train_s: float = 0.0
    samples_per_s: float = Field(0.0, description="Training samples per second over all workers, start-up excluded.")
    fingerprint: str = Field("", description="SHA-256 of what decided the adapter (settings, base, data, world size).")


class ExpertEntry(TrainedAdapter):
    cluster: int
    centroid: list[float]


class ExpertManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_model: str
    lora: LoraShape
    experts: list[ExpertEntry] = Field(default_factory=list)
    all_data: TrainedAdapter | None = None

    def finished(self) -> dict[str, TrainedAdapter]:
        done: dict[str, TrainedAdapter] = {e.name: e for e in self.experts}
        if self.all_data is not None:
            done[self.all_data.name] = self.all_data
        return done

    def digest(self) -> str:
        """SHA-256 of the base and every adapter's fingerprint: what a stage built on these adapters
        records, so that a retrained expert makes its hypernetwork and evaluation stale."""
        adapters = [(a.name, a.fingerprint) for a in self.finished().values()]
        return hashlib.sha256(json.dumps([self.base_model, sorted(adapters)]).encode()).hexdigest()

    def record(self, entry: TrainedAdapter) -> None:
        """Add or replace one run's entry, keeping experts ordered by cluster."""
        if isinstance(entry, ExpertEntry):
            self.experts = sorted([e for e in self.experts if e.name != entry.name] + [entry], key=lambda e: e.cluster)
        else:
            self.all_data = entry


def manifest_path(out_dir: str) -> str:
    return storage.join(out_dir, MANIFEST_FILE)


def load_manifest(out_dir: str) -> ExpertManifest:
    """The manifest under `out_dir` (the experts folder); a missing one is a clear error."""
    path = manifest_path(out_dir)
    if not storage.exists(path):
        raise FileNotFoundError(f"no experts manifest at {path}: run the experts stage (bdc disentangle train) first")
    return ExpertManifest.model_validate_json(storage.read_text(path))


def save_manifest(manifest: ExpertManifest, out_dir: str) -> None:
    storage.write_text_atomic(manifest_path(out_dir), manifest.model_dump_json(indent=2) + "\n")
