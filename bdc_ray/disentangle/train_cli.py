"""`bdc disentangle train`: one LoRA expert per cluster plus the all-data baseline, on Ray Train.

The command is registered on the Disentangle sub-app in bdc_ray/disentangle/cli.py; it lives
here so the clustering and the experts commands can change independently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from bdc_ray.config import DEFAULT_CONFIG
from bdc_ray.cli_support import fail, load_or_exit
from bdc_ray.console import wide_console

console = wide_console()


def manifest_table(manifest) -> Table:
    table = Table(title=f"experts of {manifest.base_model} (r={manifest.lora.r}, alpha={manifest.lora.lora_alpha})")
    for col in ("adapter", "cluster", "rows", "steps", "final loss", "resumed at", "samples/s", "path"):
        table.add_column(col, justify="left" if col in ("adapter", "path") else "right", overflow="fold")
    entries = [*manifest.experts, *([manifest.all_data] if manifest.all_data else [])]
    for e in entries:
        table.add_row(
            e.name,
            str(getattr(e, "cluster", "-")),
            str(e.size),
            str(e.steps),
            f"{e.final_loss:.4f}" if e.final_loss is not None else "-",
            ",".join(map(str, e.resumed_from)) or "-",
            f"{e.samples_per_s:.1f}",
            e.path,
        )
    return table


def train_cmd(
    config: Path = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="ray_config.yaml to use."),
    base_model: Optional[str] = typer.Option(
        None, "--base-model", help="Base model folder (default: the config's, else the first agent's model)."
    ),
    run_dir: Optional[str] = typer.Option(None, "--run-dir", help="Run folder (default: the config's storage_path/run_name)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
) -> None:
    """Train one LoRA expert per cluster and the all-data baseline, concurrently, with Ray Train."""
    from bdc_ray.disentangle.experts import first_agent_model, run_train_stage
    from bdc_ray.disentangle.manifest import experts_dir
    from bdc_ray.ray_session import init_ray

    cfg = load_or_exit(config)
    section = cfg.stages.disentangle.experts
    init_ray(cfg.ray)
    run = run_dir or cfg.run_dir
    try:
        base = base_model or section.base_model or first_agent_model(cfg.models.agents, cfg.models.build_root)
        manifest = run_train_stage(run, section, base, progress=progress)
    except (FileNotFoundError, ValueError) as err:
        fail(f"cannot train experts: {err}")
    console.print(manifest_table(manifest))
    console.print(f"manifest: {experts_dir(run)}/manifest.json")
