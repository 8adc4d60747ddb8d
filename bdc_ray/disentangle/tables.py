"""Disentangle's results as rich tables: the clusters found, and the experts trained."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from bdc_ray.artifacts.experts import ExpertManifest


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


def manifest_table(manifest: ExpertManifest) -> Table:
    table = Table(title=f"experts of {manifest.base_model} (r={manifest.lora.r}, alpha={manifest.lora.lora_alpha})")
    for col in ("adapter", "cluster", "rows", "steps", "final loss", "val loss (at step)", "resumed at", "samples/s", "path"):
        table.add_column(col, justify="left" if col in ("adapter", "path") else "right", overflow="fold")
    entries = [*manifest.experts, *([manifest.all_data] if manifest.all_data else [])]
    for e in entries:
        table.add_row(
            e.name,
            str(getattr(e, "cluster", "-")),
            str(e.size),
            str(e.steps),
            f"{e.final_loss:.4f}" if e.final_loss is not None else "-",
            f"{e.validation_loss:.4f} ({e.best_step})" if e.validation_loss is not None else "-",
            ",".join(map(str, e.resumed_from)) or "-",
            f"{e.samples_per_s:.1f}",
            e.path,
        )
    return table
