"""The one typed schema for `ray_config.yaml`.

Every section forbids unknown keys, so a typo fails at start-up with the key's full path
(`sandbox.limits.time_sec: unknown key`) instead of being silently ignored on a cluster an
hour later. Relative paths in the file are resolved against the file's own folder, so a job
submitted with `--working-dir .` and a local run see the same data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bdc_ray.boost.interfaces import SearchConfig
from bdc_ray.customize.config import CustomizeConfig
from bdc_ray.disentangle.cluster_config import ClusterConfig
from bdc_ray.disentangle.expert_config import ExpertsConfig
from bdc_ray.llm.agent_config import AgentConfig
from bdc_ray.problems.synth import SynthConfig
from bdc_ray.ray_session import RaySection
from bdc_ray.resources import ResourceSpec
from bdc_ray.serve.config import ServeConfig
from bdc_ray.sandbox.section import SandboxSection

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "ray_config.yaml"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class ResourcesSection(Strict):
    sandbox: ResourceSpec = Field(default_factory=lambda: ResourceSpec(num_cpus=1.0))


class EvalDataset(Strict):
    path: str = Field(description="A problem file (HumanEval, MBPP, APPS, CodeContests or bdc JSONL).")
    format: str | None = Field(None, description="Format name; None = detect.")
    name: str | None = Field(None, description="Label in tables; default: the file name.")


class EvalStage(Strict):
    k: list[int] = Field(default_factory=lambda: [1, 10], description="pass@k values to report.")
    tests: str = Field("all", pattern="^(all|hidden|public)$", description="Which tests decide a pass.")
    datasets: list[EvalDataset] = Field(
        default_factory=list, description="Public problem files whose reference solutions `bdc run` evaluates."
    )
    splits: list[Literal["train", "heldout", "heldout_comp"]] = Field(
        default_factory=lambda: ["heldout", "heldout_comp"],
        description="Synthetic splits the solvers are measured on (held-out: never trained on, never boosted).",
    )
    solvers: list[Literal["base", "all_data", "customized"]] = Field(
        default_factory=lambda: ["base", "all_data", "customized"],
        min_length=1,
        description="base model, the all-data LoRA baseline, the customized solver (experts + hypernetwork).",
    )
    samples: int = Field(1, ge=1, description="Samples per problem and solver (pass@k needs k <= samples).")
    temperature: float = Field(0.0, ge=0, description="0: greedy decoding.")
    max_new_tokens: int = Field(256, ge=1, description="Longest generated program in tokens.")
    resources: ResourceSpec = Field(
        default_factory=ResourceSpec, description="What each solver's generation task asks for (a GPU node on a cluster)."
    )

    @field_validator("k")
    @classmethod
    def _positive_k(cls, value: list[int]) -> list[int]:
        if not value or any(k < 1 for k in value):
            raise ValueError(f"k must be a non-empty list of integers >= 1, got {value}")
        return sorted(set(value))


class BoostStage(Strict):
    problems: str = Field(
        "synthetic:train",
        description="'synthetic:<split>' (the run's generated suite) or a problem file (any supported format).",
    )
    format: str | None = Field(None, description="Format of a problem file; None = detect.")
    max_problems: int | None = Field(
        None, ge=1, description="Search only N problems, taken round-robin across families (the first of each)."
    )
    max_concurrent_problems: int = Field(8, ge=1, description="Searches in flight at once (across the cluster).")
    max_attempts: int = Field(3, ge=1, description="Tries per problem when an actor dies mid-search.")
    search: SearchConfig = Field(default_factory=SearchConfig)


class DisentangleStage(Strict):
    cluster: ClusterConfig = Field(
        default_factory=ClusterConfig, description="Embedding and KMeans clustering of the SFT problems."
    )
    experts: ExpertsConfig = Field(
        default_factory=ExpertsConfig, description="One LoRA expert per cluster plus the all-data baseline (Ray Train)."
    )


class StagesSection(Strict):
    boost: BoostStage = Field(default_factory=BoostStage)
    disentangle: DisentangleStage = Field(default_factory=DisentangleStage)
    customize: CustomizeConfig = Field(default_factory=CustomizeConfig)
    eval: EvalStage = Field(default_factory=EvalStage)


class ModelsSection(Strict):
    build_root: str = Field("./runs/models", description="Where tiny models are built and cached (shared by runs).")
    agents: list[AgentConfig] = Field(default_factory=list, description="Boost's agents; two or more for mutual boosting.")

    @field_validator("agents")
    @classmethod
    def _unique_names(cls, value: list[AgentConfig]) -> list[AgentConfig]:
        names = [a.name for a in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"agent names must be unique, repeated: {dupes}")
        return value


class DataSection(Strict):
    synthetic: SynthConfig = Field(default_factory=SynthConfig)


class BDCConfig(Strict):
    run_name: str = Field("default", pattern=r"^[A-Za-z0-9_.-]+$", description="Folder of this run under storage_path.")
    storage_path: str = Field("./runs", description="Local folder or s3:// / gs:// URI holding every artifact.")
    ray: RaySection = Field(default_factory=RaySection)
    resources: ResourcesSection = Field(default_factory=ResourcesSection)
    sandbox: SandboxSection = Field(default_factory=SandboxSection)
    data: DataSection = Field(default_factory=DataSection)
    models: ModelsSection = Field(default_factory=ModelsSection)
    stages: StagesSection = Field(default_factory=StagesSection)
    serve: ServeConfig = Field(default_factory=ServeConfig, description="The customized solver behind an HTTP API.")

    @property
    def run_dir(self) -> str:
        return self.storage_path.rstrip("/") + "/" + self.run_name


class ConfigError(ValueError):
    """A config file that cannot be used; the message names every bad key path."""


def _is_uri(path: str) -> bool:
    return "://" in path


def _resolve_paths(cfg: BDCConfig, base: Path) -> BDCConfig:
    def resolve(p: str) -> str:
        return p if _is_uri(p) or os.path.isabs(p) else str((base / p).resolve())

    cfg.storage_path = resolve(cfg.storage_path)
    cfg.models.build_root = resolve(cfg.models.build_root)
    for agent in cfg.models.agents:
        if agent.model is not None and agent.model.path.startswith((".", "~")):
            agent.model.path = resolve(os.path.expanduser(agent.model.path))
    if not cfg.stages.boost.problems.startswith("synthetic:"):
        cfg.stages.boost.problems = resolve(cfg.stages.boost.problems)
    for ds in cfg.stages.eval.datasets:
        ds.path = resolve(ds.path)
    source = cfg.stages.customize.source
    if source != "boost" and not source.startswith("synthetic:"):
        cfg.stages.customize.source = resolve(source)
    for attr in ("experts", "hypernet"):
        if getattr(cfg.serve, attr) is not None:
            setattr(cfg.serve, attr, resolve(getattr(cfg.serve, attr)))
    if cfg.serve.auth.api_key_file:
        cfg.serve.auth.api_key_file = resolve(os.path.expanduser(cfg.serve.auth.api_key_file))
    if cfg.stages.disentangle.experts.base_model and cfg.stages.disentangle.experts.base_model.startswith((".", "~")):
        cfg.stages.disentangle.experts.base_model = resolve(os.path.expanduser(cfg.stages.disentangle.experts.base_model))
    return cfg


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"{source}: {err.error_count()} invalid setting(s)"]
    for e in err.errors():
        path = ".".join(str(part) for part in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"  {path}: unknown key")
        else:
            lines.append(f"  {path}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>", base: Path | None = None) -> BDCConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    try:
        cfg = BDCConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None
    return _resolve_paths(cfg, base or Path.cwd())


def load_config(path: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None) -> BDCConfig:
    """Read, validate and resolve a config file (default: the repository's ray_config.yaml).

    `overrides` is a nested dict merged over the file, e.g. {"run_name": "smoke"}.
    """
    file = Path(path) if path is not None else DEFAULT_CONFIG
    if not file.is_file():
        raise ConfigError(f"{file}: no such config file")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{file}: not valid YAML: {err}") from None
    if overrides:
        data = deep_merge(data or {}, overrides)
    return parse_config(data, str(file), file.resolve().parent)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def dump_config(cfg: BDCConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
