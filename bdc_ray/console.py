"""Output every command, stage and benchmark shares: a console sized for logs, Markdown tables."""

from __future__ import annotations

import sys
from typing import Any, Sequence

from rich.console import Console


def wide_console(**kwargs) -> Console:
    """A console that gives tables room in job and CI logs (not terminals), instead of 80 columns."""
    return Console(width=None if sys.stdout.isatty() else 160, **kwargs)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
