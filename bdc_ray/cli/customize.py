"""`bdc customize train | tune`: train or tune the hypernetwork of a run.

Each command loads ray_config.yaml, takes its `stages.customize` section with the command's
overrides and calls one stage entry point.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from bdc_ray.cli.support import ConfigOpt, RunNameOpt, console, fail, load_or_exit

if TYPE_CHECKING:
    from bdc_ray.config import BDCConfig
    from bdc_ray.customize import CustomizeConfig

app = typer.Typer(help="Customize: the input-aware hypernetwork that mixes the LoRA experts per problem.",
                  no_args_is_help=True)

SourceOpt = typer.Option(None, "--source", help="Training rows: boost, synthetic:<split> or a JSONL file.")
ForceOpt = typer.Option(False, "--force", help="Retrain even when an up-to-date hypernetwork exists.")
StepsOpt = typer.Option(None, "--steps", help="Override train.steps (e.g. a short smoke run).")


def _load(config: Path | None, run_name: str | None, overrides: dict[str, Any]) -> tuple[BDCConfig, CustomizeConfig]:
    """The run config and its customize section with the command's overrides (nested dict)."""
    from pydantic import ValidationError

    from bdc_ray.config import deep_merge
    from bdc_ray.customize import CustomizeConfig

    cfg = load_or_exit(config, {"run_name": run_name} if run_name else None)
    try:
        section = CustomizeConfig.model_validate(deep_merge(cfg.stages.customize.model_dump(), overrides))
    except ValidationError as err:
        fail(f"bad option: {err.errors()[0]['loc']}: {err.errors()[0]['msg']}")
    return cfg, section


def _overrides(source: str | None, steps: int | None, trials: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if source is not None:
        out["source"] = source
    if steps is not None:
        out["train"] = {"steps": steps}
    if trials is not None:
        out["search"] = {"num_samples": trials}
    return out


def _report(summary: dict[str, Any]) -> None:
    console.print_json(data=summary)
    console.print(f"hypernetwork: {summary['hypernet_dir']}")


@app.command("train")
def train_cmd(config: Optional[Path] = ConfigOpt, run_name: Optional[str] = RunNameOpt, source: Optional[str] = SourceOpt,
              steps: Optional[int] = StepsOpt, force: bool = ForceOpt) -> None:
    """Train one hypernetwork with the configured hyperparameters (in this process)."""
    from bdc_ray.customize import train_stage

    cfg, section = _load(config, run_name, _overrides(source, steps))
    try:
        _report(train_stage(cfg.layout, section, cfg.suite, force=force))
    except (FileNotFoundError, ValueError) as err:
        fail(f"cannot train the hypernetwork: {err}")


@app.command("tune")
def tune_cmd(config: Optional[Path] = ConfigOpt, run_name: Optional[str] = RunNameOpt, source: Optional[str] = SourceOpt,
             steps: Optional[int] = StepsOpt,
             trials: Optional[int] = typer.Option(None, "--trials", help="Override search.num_samples."),
             force: bool = ForceOpt) -> None:
    """Search the hypernetwork's hyperparameters with Ray Tune (ASHA); keep the best trial's checkpoint."""
    from bdc_ray.customize import tune_stage
    from bdc_ray.ray_session import init_ray

    cfg, section = _load(config, run_name, _overrides(source, steps, trials))
    init_ray(cfg.ray)
    try:
        _report(tune_stage(cfg.layout, section, cfg.suite, force=force))
    except (FileNotFoundError, ValueError) as err:
        fail(f"cannot tune the hypernetwork: {err}")
