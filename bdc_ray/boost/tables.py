"""The Boost summary as a rich table: what the search found and who found it."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def boost_table(summary: dict[str, Any], title: str = "Boost") -> Table:
    n = max(summary["problems"], 1)
    table = Table(title=title)
    for col in ("problems", "solved (public)", "at the root", "by the tree", "verified (hidden)", "mean rollouts",
                "mean tree size", "mean depth", "SFT rows", "preference pairs"):
        table.add_column(col, justify="right")
    share = lambda key: f"{summary[key]} ({100 * summary[key] / n:.0f}%)"  # noqa: E731
    table.add_row(
        str(summary["problems"]),
        share("solved_public"),
        share("solved_at_root"),
        share("solved_by_tree"),
        share("solved_hidden"),
        f"{summary['mean_rollouts']:.1f}",
        f"{summary['mean_tree_size']:.1f}",
        f"{summary['mean_tree_depth']:.1f}",
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
