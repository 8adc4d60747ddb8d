"""`bdc disentangle cluster | train`: the Disentangle stage's commands.

Each command loads ray_config.yaml, lets its options override the stage's section and calls
one stage entry point; the work itself lives in bdc_ray/disentangle.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from bdc_ray.cli.support import ConfigOpt, console, fail, load_or_exit

if TYPE_CHECKING:
    from bdc_ray.disentangle import ClusterConfig

app = typer.Typer(help="Disentangle: cluster the SFT problems and train one LoRA expert per cluster.", no_args_is_help=True)


def _cluster_config(section: ClusterConfig, k: int | None) -> ClusterConfig:
    """The config's `stages.disentangle.cluster` section, with --k."""
    from pydantic import ValidationError

    from bdc_ray.disentangle import ClusterConfig

    if k is None:
        return section
    try:
        return ClusterConfig.model_validate({**section.model_dump(), "k": k})
    except ValidationError as err:
        fail(f"bad --k: {err.errors()[0]['msg']}")


@app.command("cluster")
def cluster_cmd(
    config: Optional[Path] = ConfigOpt,
    sft: Optional[str] = typer.Option(
        None, "--sft", help="SFT rows (default: stages.disentangle.source's, <run>/boost/sft.jsonl unless set)."
    ),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Output folder (default: <run>/disentangle/clusters)."),
    k: Optional[int] = typer.Option(None, "--k", help="Number of clusters (default: the config's; none = by silhouette)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
) -> None:
    """Embed every SFT problem, cluster with KMeans, save centroids and assignments, draw the map."""
    from bdc_ray.disentangle import EmbedderError, clusters_table, run_cluster_stage, source_rows_file

    cfg = load_or_exit(config)
    section = _cluster_config(cfg.stages.disentangle.cluster, k)
    out_dir = out or cfg.layout.clusters_dir
    try:
        rows = sft or source_rows_file(cfg.layout, cfg.stages.disentangle.source, cfg.suite)
        summary = run_cluster_stage(rows, out_dir, section, progress=progress)
    except (FileNotFoundError, ValueError, EmbedderError) as err:
        fail(f"cannot cluster: {err}")
    console.print(clusters_table(summary))
    scores = ", ".join(f"K={kk}: {v:.3f}" for kk, v in sorted(summary["silhouette"].items())) or "-"
    console.print(f"silhouette {scores}")
    state = "up to date, not recomputed" if summary["resumed"] else "written"
    console.print(f"clusters {state}: {out_dir} (clusters.json, assignments.jsonl, {Path(summary['plot']).name})")


@app.command("train")
def train_cmd(
    config: Optional[Path] = ConfigOpt,
    base_model: Optional[str] = typer.Option(
        None, "--base-model", help="Base model folder (default: the config's base_model, else models.student, else the first agent's model)."
    ),
    run_dir: Optional[str] = typer.Option(None, "--run-dir", help="Run folder (default: the config's storage_path/run_name)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
) -> None:
    """Train one LoRA expert per cluster and the all-data baseline, concurrently, with Ray Train."""
    from bdc_ray.artifacts.layout import RunLayout
    from bdc_ray.disentangle import manifest_table, run_train_stage, source_rows_file
    from bdc_ray.models import student_model
    from bdc_ray.ray_session import init_ray

    cfg = load_or_exit(config)
    section = cfg.stages.disentangle.experts
    init_ray(cfg.ray)
    layout = RunLayout(run_dir) if run_dir else cfg.layout
    try:
        base = base_model or section.base_model or student_model(cfg.models)
        rows = source_rows_file(layout, cfg.stages.disentangle.source, cfg.suite)
        manifest = run_train_stage(layout, section, base, progress=progress, sft_file=rows)
    except (FileNotFoundError, ValueError) as err:
        fail(f"cannot train experts: {err}")
    console.print(manifest_table(manifest))
    console.print(f"manifest: {layout.experts_dir}/manifest.json")
