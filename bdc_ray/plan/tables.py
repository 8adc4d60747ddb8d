"""The plan as rich tables: what each stage asks for and where it lands, how its time was
estimated, and the figures the estimate rests on."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from bdc_ray.plan.build import Plan, StagePlan
from bdc_ray.plan.nodes import format_bundle


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _wall(stage: StagePlan) -> str:
    if stage.gpu_hours_per_hour is not None:
        return "service"
    return duration(stage.wall_s) if stage.wall_s is not None else "cannot start"


def _gpu_hours(stage: StagePlan) -> str:
    if stage.gpu_hours_per_hour is not None:
        low, high = stage.gpu_hours_per_hour
        return f"{low:g}-{high:g} per hour"
    return f"{stage.gpu_hours:,.1f}"


def requests_table(plan: Plan) -> Table:
    where = f" on {plan.cluster}" if plan.cluster else " (no cluster file)"
    table = Table(title=f"bdc plan: {plan.config}{where}", show_lines=True)
    for column in ("stage", "each asks for (config key)", "how many", "fits node type", "at once", "nodes",
                   "wall", "GPU-h"):
        table.add_column(column, overflow="fold")
    for stage in plan.stages:
        nodes = "-" if stage.nodes is None else ", ".join(f"{n} x {name}" for name, n in stage.nodes.items()) or "none"
        for i, row in enumerate(stage.demands or [None]):
            if row is None:
                cells = ["(the driver only)", "", "", ""]
            else:
                at_once = f"{row.placed} of {row.asked}" + (f" (x {row.per_unit} workers)" if row.per_unit > 1 else "")
                cells = [f"{row.what}\n{format_bundle(row.each)}\n{row.key}", row.how_many, ", ".join(row.fits), at_once]
            first = [stage.name] if i == 0 else [""]
            last = [nodes, _wall(stage), _gpu_hours(stage)] if i == 0 else ["", "", ""]
            table.add_row(*(Text(c) for c in first + cells + last))
    return table


def estimates_table(plan: Plan) -> Table:
    table = Table(title="How each stage's time is estimated", show_lines=True)
    table.add_column("stage")
    table.add_column("work / throughput", overflow="fold")
    for stage in plan.stages:
        table.add_row(stage.name, Text(stage.formula))
    return table


def figures_table(plan: Plan) -> Table:
    table = Table(title="Throughput figures (override with --throughput FILE)", show_lines=True)
    for column in ("figure", "value", "unit", "source"):
        table.add_column(column, overflow="fold")
    for name, figure in plan.figures.items():
        table.add_row(name, f"{figure.value:,g}", Text(figure.unit), Text(figure.source))
    return table


def summary_lines(plan: Plan) -> list[str]:
    serve = [s.gpu_hours_per_hour for s in plan.stages if s.gpu_hours_per_hour is not None]
    total = duration(plan.total_wall_s) if plan.total_wall_s is not None else "not computable (a stage cannot start)"
    lines = [f"total: wall {total} (stages in sequence, serve left out), {plan.total_gpu_hours:,.1f} GPU-hours"]
    lines += [f"serve: {low:g}-{high:g} GPU-hours per hour it is up" for low, high in serve]
    lines += [f"cannot get all at once: {line}" for stage in plan.stages for line in stage.short]
    lines += [f"note: {note}" for note in plan.notes]
    return lines


def plan_tables(plan: Plan) -> list[Table | Text]:
    """What `bdc plan` prints, in order."""
    return [requests_table(plan), *(Text(line) for line in summary_lines(plan)), estimates_table(plan),
            figures_table(plan)]
