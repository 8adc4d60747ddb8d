"""Summaries rendered as rich tables (terminal) and Markdown (README, reports)."""

from __future__ import annotations

from typing import Any, Sequence

from rich.table import Table

from bdc_ray.console import markdown_table
from bdc_ray.eval.evaluate import FAILURE_LABELS, MULTIPLE_OUTPUTS_LABEL


def _failures(summary: dict[str, Any]) -> str:
    """Failures other than timeouts (those have their own column); wrong answers that may be
    correct (several valid outputs) are said so."""
    counts = summary.get("status_counts", {})
    parts = []
    for status, n in sorted(counts.items()):
        if status in FAILURE_LABELS and status != "timeout" and n:
            ambiguous = summary.get("wrong_multiple_outputs", 0) if status == "failed" else 0
            parts.append(f"{FAILURE_LABELS[status]} {n}" + (f" ({ambiguous} {MULTIPLE_OUTPUTS_LABEL})" if ambiguous else ""))
    return ", ".join(parts) or "-"


def _columns(summaries: Sequence[dict[str, Any]]) -> list[str]:
    ks = sorted({key for s in summaries for key in s if key.startswith("pass@")}, key=lambda k: int(k[5:]))
    return ["dataset", "problems", "samples", *ks, "pass rate", "strict acc", "timeouts", "failures"]


def _rows(summaries: Sequence[dict[str, Any]], columns: list[str]) -> list[list[str]]:
    rows = []
    for s in summaries:
        row = [str(s.get("dataset", "")), str(s["n_problems"]), str(s["n_samples"])]
        row += [f"{100 * s[c]:.1f}%" if c in s else "-" for c in columns if c.startswith("pass@")]
        row += [f"{100 * s['pass_rate']:.1f}%", f"{100 * s['strict_accuracy']:.1f}%", str(s.get("timeouts", 0))]
        row.append(_failures(s))
        rows.append(row)
    return rows


def summary_table(summaries: Sequence[dict[str, Any]], title: str = "Evaluation") -> Table:
    columns = _columns(summaries)
    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="left" if c in ("dataset", "failures") else "right", no_wrap=c != "failures")
    for row in _rows(summaries, columns):
        table.add_row(*row)
    return table


def summary_markdown(summaries: Sequence[dict[str, Any]]) -> str:
    columns = _columns(summaries)
    return markdown_table(columns, _rows(summaries, columns))


def with_groups(summary: dict[str, Any], group_key: str) -> list[dict[str, Any]]:
    """The overall summary followed by one row per group (difficulty, family...)."""
    rows = [summary]
    for group, sub in summary.get(f"by_{group_key}", {}).items():
        rows.append({**sub, "dataset": f"  {summary.get('dataset', '')} / {group}"})
    return rows
