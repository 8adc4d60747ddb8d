"""The one typed schema for `ray_config.yaml`, composed of the sections each package defines.

Every section forbids unknown keys, so a typo fails at start-up with the key's full path
(`sandbox.limits.time_sec: unknown key`) instead of being silently ignored on a cluster an
hour later. Relative paths in the file are resolved against the file's own folder, so a job
submitted with `--working-dir .` and a local run see the same data: each section resolves its
own paths (`resolve_paths`), this module only hands them the resolver.

This is the only module that knows every section; stages take their own section (and the few
shared values they need), never `BDCConfig`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.boost import BoostStage
from bdc_ray.customize import CustomizeConfig
from bdc_ray.disentangle import DisentangleStage
from bdc_ray.heldout import EvalStage
from bdc_ray.models import ModelsSection
from bdc_ray.problems.suite_files import SuiteFolder
from bdc_ray.problems.synth import SynthConfig
from bdc_ray.ray_session import RaySection
from bdc_ray.resources import ResourceSpec
from bdc_ray.sandbox.section import SandboxSection
from bdc_ray.serve import ServeConfig

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "ray_config.yaml"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class ResourcesSection(Strict):
    sandbox: ResourceSpec = Field(default_factory=lambda: ResourceSpec(num_cpus=1.0))


class StagesSection(Strict):
    boost: BoostStage = Field(default_factory=BoostStage)
    disentangle: DisentangleStage = Field(default_factory=DisentangleStage)
    customize: CustomizeConfig = Field(default_factory=CustomizeConfig)
    eval: EvalStage = Field(default_factory=EvalStage)


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

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_dir)

    @property
    def suite(self) -> SuiteFolder:
        """The run's synthetic suite, in its data folder."""
        return SuiteFolder(self.data.synthetic, self.layout.data_dir)


class ConfigError(ValueError):
    """A config file that cannot be used; the message names every bad key path."""


def _is_uri(path: str) -> bool:
    return "://" in path


def _resolve_paths(cfg: BDCConfig, base: Path) -> BDCConfig:
    def resolve(p: str) -> str:
        return p if _is_uri(p) or os.path.isabs(p) else str((base / p).resolve())

    cfg.storage_path = resolve(cfg.storage_path)
    for section in (cfg.models, cfg.stages.boost, cfg.stages.disentangle, cfg.stages.customize, cfg.stages.eval, cfg.serve):
        section.resolve_paths(resolve)
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


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    override_files: Sequence[str | os.PathLike[str]] = (),
) -> BDCConfig:
    """Read, validate and resolve a config file (default: the repository's ray_config.yaml).

    `override_files` are YAML files of the same schema merged over it in order (mappings key by
    key, anything else, lists included, replaced whole), then `overrides`, a nested dict such as
    {"run_name": "smoke"}. The merged result is validated as one config; relative paths in any
    of them resolve against the folder of `path`, as if they were written there.
    """
    file = Path(path) if path is not None else DEFAULT_CONFIG
    data = _read_yaml(file) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of keys, got {type(data).__name__}")
    sources = [str(file)]
    for extra in override_files:
        layer = _read_yaml(Path(extra))
        if not isinstance(layer, dict):
            raise ConfigError(f"{extra}: an override file must be a mapping of keys, got {type(layer).__name__}")
        data = deep_merge(data, layer)
        sources.append(str(extra))
    if overrides:
        data = deep_merge(data, overrides)
    return parse_config(data, " + ".join(sources), file.resolve().parent)


def _read_yaml(file: Path) -> Any:
    if not file.is_file():
        raise ConfigError(f"{file}: no such config file")
    try:
        return yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{file}: not valid YAML: {err}") from None


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
