"""The pipeline's final table: pass@k per solver and split, overall and per family."""

from __future__ import annotations

from typing import Any, Sequence

from rich.table import Table


def family_table(summaries: Sequence[dict[str, Any]], metric: str = "pass@1") -> tuple[list[str], list[list[str]]]:
    """(header, rows): one row per solver and split, the metric overall and per family, in %."""
    families = sorted({f for s in summaries for f in s.get("by_family", {})})
    header = ["solver", "split", "problems", metric, *families]
    rows = []
    for s in summaries:
        fam = s.get("by_family", {})
        rows.append(
            [s["solver"], s["split"], str(s["n_problems"]), f"{100 * s.get(metric, 0.0):.1f}",
             *(f"{100 * fam[f].get(metric, 0.0):.0f}" if f in fam else "-" for f in families)]
        )
    return header, rows


def differences_rich(rows: Sequence[dict[str, Any]]) -> Table:
    from bdc_ray.heldout.differences import differences_table

    header, cells = differences_table(rows)
    table = Table(title="Differences between solvers on the same problems (points, paired bootstrap 95% interval)")
    for col in header:
        table.add_column(col, justify="left" if col in ("difference", "split") else "right")
    for row in cells:
        table.add_row(*row)
    return table


def heldout_table(summaries: Sequence[dict[str, Any]], metric: str, tests: str, samples: int) -> Table:
    header, rows = family_table(summaries, metric)
    table = Table(title=f"Held-out synthetic problems: {metric} (%) per solver ({tests} tests, {samples} sample(s))")
    for col in header:
        table.add_column(col, justify="left" if col in ("solver", "split") else "right")
    for row in rows:
        table.add_row(*row)
    return table
