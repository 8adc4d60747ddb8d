"""`bdc plan`: what the config asks a cluster for and how long each stage should take, printed
before anything runs (bdc_ray/plan/ holds the work; this only parses options and prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bdc_ray.cli.support import ConfigOpt, console, fail, load_or_exit


def plan_cmd(
    config: Optional[Path] = ConfigOpt,
    cluster: Optional[Path] = typer.Option(
        None, "--cluster", help="A Ray cluster-launcher YAML or a KubeRay RayCluster/RayJob/RayService manifest."
    ),
    throughput: Optional[Path] = typer.Option(
        None, "--throughput", help="YAML of throughput figures over the defaults: `name: value` or `name: {value, source}`."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON (for scripts)."),
) -> None:
    """Every stage's requests, where they fit, the nodes to start, wall time and GPU-hours; exit 2 when
    a request fits no node type of the cluster file."""
    from bdc_ray.plan import (
        ClusterFileError, PlanError, Throughput, ThroughputError, build_plan, load_throughput, plan_tables,
        read_cluster_file,
    )

    cfg = load_or_exit(config)
    try:
        figures = load_throughput(throughput) if throughput else Throughput()
        nodes = read_cluster_file(cluster) if cluster else None
        plan = build_plan(cfg, str(config or "ray_config.yaml"), nodes, figures)
    except (ClusterFileError, PlanError, ThroughputError) as err:
        fail(str(err))
    if as_json:
        typer.echo(plan.model_dump_json(indent=2))
        return
    for part in plan_tables(plan):
        console.print(part)
