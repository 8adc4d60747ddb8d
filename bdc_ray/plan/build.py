"""A config's plan on a cluster file: every stage's requests fitted and packed onto the node types,
its time and GPU-hours, and the totals; a request that fits no node type fails with its key.

Without a cluster file the requests are listed with the node type they imply (their custom
resources, or a GPU) and the config's own concurrency; node counts are not computed.
"""

from __future__ import annotations

from pydantic import BaseModel

from bdc_ray.config import BDCConfig
from bdc_ray.eval.evaluate import reference_samples
from bdc_ray.plan.nodes import ClusterFile, format_bundle
from bdc_ray.plan.packing import Request, pack
from bdc_ray.plan.stages import Counts, Demand, StageWork, stage_works
from bdc_ray.plan.throughput import Figure, Throughput
from bdc_ray.problems.loaders import load_problems
from bdc_ray.problems.synth import FAMILIES, SPLITS


class PlanError(ValueError):
    """A config the cluster file cannot run; the message names every request's key path."""


class DemandRow(BaseModel):
    what: str
    key: str
    each: dict[str, float]
    how_many: str
    asked: int
    """Units asked for at once (a unit of a Ray Train run is its whole worker group)."""
    per_unit: int
    fits: list[str]
    """Node types of the cluster file that hold one; without a cluster file, what it implies."""
    placed: int
    """Units the cluster holds at once (= asked without a cluster file)."""


class StagePlan(BaseModel):
    name: str
    doc: str
    demands: list[DemandRow]
    nodes: dict[str, int] | None
    """Worker nodes of each type up for this stage; None without a cluster file."""
    short: list[str]
    """What the stage cannot get all at once."""
    wall_s: float | None
    gpu_hours: float
    gpu_hours_per_hour: tuple[float, float] | None
    formula: str


class Plan(BaseModel):
    config: str
    cluster: str | None
    stages: list[StagePlan]
    total_wall_s: float | None
    """The stages in sequence (serve, a service, left out); None when one of them cannot run."""
    total_gpu_hours: float
    figures: dict[str, Figure]
    notes: list[str]


def count_problems(cfg: BDCConfig) -> Counts:
    """The problems of Boost, of each synthetic split and the reference solutions the data stage
    checks; a problem file that cannot be read here is counted as 0, with a note."""
    synth = cfg.data.synthetic
    families = len(synth.families or FAMILIES)
    per_family = {"train": synth.train_per_family, "heldout": synth.heldout_per_family,
                  "heldout_comp": synth.heldout_comp_per_family}
    splits = {split: per_family[split] * families for split in SPLITS}
    notes: list[str] = []

    def count(path: str, fmt: str | None, key: str, references: bool) -> int:
        try:
            problems, _ = load_problems(path, fmt)
        except (OSError, ValueError) as err:
            notes.append(f"{key}: {path} not read here ({type(err).__name__}), counted as 0 problems")
            return 0
        return len(reference_samples(problems)[0]) if references else len(problems)

    boost = cfg.stages.boost
    if boost.problems.startswith("synthetic:"):
        total = splits.get(boost.problems.removeprefix("synthetic:"), 0)
    else:
        total = count(boost.problems, boost.format, "stages.boost.problems", False)
    if boost.max_problems is not None:
        total = min(total, boost.max_problems)
    datasets = sum(count(d.path, d.format, f"stages.eval.datasets.{i}.path", True)
                   for i, d in enumerate(cfg.stages.eval.datasets))
    return Counts(boost=total, splits=splits, references=sum(splits.values()) + datasets, notes=notes)


def start_resources(cluster: ClusterFile) -> dict[str, float]:
    """What Ray sees when a stage starts on a cluster scaled down: the head and min_workers nodes."""
    total: dict[str, float] = {}
    for node_type in cluster.node_types:
        for key, amount in node_type.resources.items():
            total[key] = total.get(key, 0.0) + amount * (1 if node_type.head else node_type.min_workers)
    return total


def implied_node_type(demand: Demand) -> str:
    custom = [k for k, v in demand.each.resources.items() if v > 0]
    if custom:
        return "with " + ", ".join(custom)
    return "with a GPU" if demand.each.num_gpus > 0 else "any"


def misfits(works: list[StageWork], cluster: ClusterFile) -> list[str]:
    """One line per request no node type of the cluster file holds."""
    return [
        f"{d.key}: {format_bundle(d.each.bundle())} fits no node type of {cluster.path} ({cluster.describe()})"
        for work in works
        for d in work.demands
        if not any(t.fits(d.each) for t in cluster.node_types)
    ]


def _stage_plan(work: StageWork, cluster: ClusterFile | None) -> StagePlan:
    if cluster is None:
        placed = [d.units for d in work.demands]
        nodes, fits = None, [[implied_node_type(d)] for d in work.demands]
    else:
        packing = pack([Request(d.each.bundle(), d.units, d.per_unit) for d in work.demands], cluster)
        placed, nodes = packing.placed, packing.nodes
        fits = [[t.name for t in cluster.node_types if t.fits(d.each)] for d in work.demands]
    short = [
        f"{d.what}: {n} of {d.units} at once (max_workers of {', '.join(where)} reached)"
        for d, n, where in zip(work.demands, placed, fits)
        if n < d.units
    ]
    estimate = work.estimate(placed)
    rows = [
        DemandRow(what=d.what, key=d.key, each=d.each.bundle(), how_many=d.how_many, asked=d.units,
                  per_unit=d.per_unit, fits=where, placed=n)
        for d, n, where in zip(work.demands, placed, fits)
    ]
    return StagePlan(name=work.name, doc=work.doc, demands=rows, nodes=nodes, short=short, wall_s=estimate.wall_s,
                     gpu_hours=estimate.gpu_hours, gpu_hours_per_hour=estimate.gpu_hours_per_hour,
                     formula=estimate.formula)


def build_plan(cfg: BDCConfig, config_path: str, cluster: ClusterFile | None, figures: Throughput) -> Plan:
    """The plan of `cfg` on `cluster` (None: no cluster file); raises PlanError when a request
    fits no node type of the cluster file."""
    counts = count_problems(cfg)
    works = stage_works(cfg, figures, counts, None if cluster is None else start_resources(cluster))
    if cluster is not None and (lines := misfits(works, cluster)):
        raise PlanError("\n".join(lines))
    stages = [_stage_plan(work, cluster) for work in works]
    timed = [s for s in stages if s.gpu_hours_per_hour is None]
    walls = [s.wall_s for s in timed]
    notes = list(counts.notes)
    if cluster is None:
        notes.append("no cluster file: node counts not computed; concurrency as the config asks "
                     "(limits left to the cluster taken as all at once)")
    notes.append("not counted: the drivers' own work (Boost's search loop, embedding and clustering), model "
                 "loading and tiny model builds, the autoscaler's node start-up")
    return Plan(
        config=config_path,
        cluster=None if cluster is None else cluster.path,
        stages=stages,
        total_wall_s=None if None in walls else sum(walls),  # type: ignore[arg-type]
        total_gpu_hours=sum(s.gpu_hours for s in stages),
        figures=dict(figures),
        notes=notes,
    )
