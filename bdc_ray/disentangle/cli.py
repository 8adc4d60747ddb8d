"""`bdc disentangle ...`: the Disentangle stage's commands (mounted by bdc_ray/cli.py).

Each command loads ray_config.yaml, lets its options override the stage's section and calls
one stage function; the work itself lives in the stage modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from pydantic import ValidationError
from rich.table import Table

from bdc_ray import storage
from bdc_ray.config import DEFAULT_CONFIG
from bdc_ray.cli_support import fail, load_or_exit
from bdc_ray.console import wide_console

app = typer.Typer(help="Disentangle: cluster the SFT problems and train one LoRA expert per cluster.", no_args_is_help=True)

console = wide_console()


def _cluster_config(cfg: Any, k: int | None):
    """The config's `stages.disentangle.cluster` section, with --k."""
    from bdc_ray.disentangle.cluster_config import ClusterConfig

    section = cfg.stages.disentangle.cluster
    if k is None:
        return section
    try:
        return ClusterConfig.model_validate({**section.model_dump(), "k": k})
    except ValidationError as err:
        fail(f"bad --k: {err.errors()[0]['msg']}")


def clusters_table(summary: dict[str, Any], title: str = "clusters") -> Table:
    table = Table(title=f"{title}: {summary['problems']} problems, {summary['rows']} rows, K={summary['k']}")
    with_family = any(c["top_family"] for c in summary["clusters"])
    for col in ("cluster", "problems", "rows", *(["top family"] if with_family else []), "example"):
        table.add_column(col, justify="left" if col in ("top family", "example") else "right", overflow="fold")
    for c in summary["clusters"]:
        family = f"{c['top_family']} ({100 * c['top_family_share']:.0f}%)" if c["top_family"] else "-"
        example = (c["example"] or "").replace("\n", " ")
        example = example[:100] + ("..." if len(example) > 100 else "")
        table.add_row(str(c["cluster"]), str(c["problems"]), str(c["rows"]), *([family] if with_family else []), example)
    return table


@app.command("cluster")
def cluster_cmd(
    config: Path = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="ray_config.yaml to use."),
    sft: Optional[str] = typer.Option(None, "--sft", help="SFT rows (default: <run>/boost/sft.jsonl)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Output folder (default: <run>/disentangle/clusters)."),
    k: Optional[int] = typer.Option(None, "--k", help="Number of clusters (default: the config's; none = by silhouette)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
) -> None:
    """Embed every SFT problem, cluster with KMeans, save centroids and assignments, draw the map."""
    from bdc_ray.disentangle.cluster_stage import run_cluster_stage
    from bdc_ray.disentangle.embed import EmbedderError

    cfg = load_or_exit(config)
    section = _cluster_config(cfg, k)
    sft_path = sft or storage.join(cfg.run_dir, "boost", "sft.jsonl")
    out_dir = out or storage.join(cfg.run_dir, "disentangle", "clusters")
    try:
        summary = run_cluster_stage(sft_path, out_dir, section, progress=progress)
    except (FileNotFoundError, ValueError, EmbedderError) as err:
        fail(f"cannot cluster: {err}")
    console.print(clusters_table(summary))
    scores = ", ".join(f"K={kk}: {v:.3f}" for kk, v in sorted(summary["silhouette"].items())) or "-"
    console.print(f"silhouette {scores}")
    state = "up to date, not recomputed" if summary["resumed"] else "written"
    console.print(f"clusters {state}: {out_dir} (clusters.json, assignments.jsonl, {Path(summary['plot']).name})")


from bdc_ray.disentangle.train_cli import train_cmd  # noqa: E402  (the experts command; see train_cli.py)

app.command("train")(train_cmd)
