"""The Boost summary as a rich table: what the search found and who found it."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def boost_table(summary: dict[str, Any], title: str = "Boost") -> Table:
    n = max(summary["problems"], 1)
    table = Table(title=title)
    for col in ("problems", "solved (public)", "verified (hidden)", "mean rollouts", "mean tree size", "SFT rows", "preference pairs"):
        table.add_column(col, justify="right")
    table.add_row(
        str(summary["problems"]),
        f"{summary['solved_public']} ({100 * summary['solved_public'] / n:.0f}%)",
        f"{summary['solved_hidden']} ({100 * summary['solved_hidden'] / n:.0f}%)",
        f"{summary['mean_rollouts']:.1f}",
        f"{summary['mean_tree_size']:.1f}",
        str(summary.get("sft_rows", 0)),
        str(summary.get("preference_pairs", 0)),
    )
    agents = Table(title="per agent")
    for col in ("agent", "generations", "sandbox runs", "best program of a verified problem"):
        agents.add_column(col, justify="left" if col == "agent" else "right")
    for name in sorted(summary["llm_generations"]):
        agents.add_row(
            name,
            str(summary["llm_generations"][name]),
            str(summary["sandbox_runs"].get(name, 0)),
            str(summary["solved_by_agent"].get(name, 0)),
        )
    outer = Table.grid(padding=1)
    outer.add_row(table)
    outer.add_row(agents)
    return outer
