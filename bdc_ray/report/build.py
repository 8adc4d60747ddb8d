"""`bdc report RUN_DIR`: report.md and its plots, from whatever the run folder holds.

Each section reads one stage's artifacts; a stage that has not run yet gives a one-line note
instead of failing the report, so the same command documents a half-finished run.
"""

from __future__ import annotations

import importlib.metadata
import platform
from typing import Any, Callable

from bdc_ray import storage
from bdc_ray.report import plots

PACKAGES = ("bdc-ray", "ray", "torch", "transformers", "peft", "deepspeed", "scikit-learn", "sentence-transformers")

Section = Callable[[str, str], str]
"""(run_dir, report_dir) -> Markdown; may write PNGs into report_dir."""


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _missing(what: str) -> str:
    return f"_{what} not found in this run folder: the stage has not run (yet)._\n"


def boost_section(run_dir: str, report_dir: str) -> str:
    from bdc_ray.boost.runner import read_traces

    traces = read_traces(storage.join(run_dir, "boost", "traces"))
    if not traces:
        return "## Boost\n\n" + _missing("boost/traces")
    n = len(traces)
    solved_public = sum(r["solved_public"] for r in traces)
    verified = sum(r["hidden_passed_all"] for r in traces)
    mean = lambda key: sum(r[key] for r in traces) / n  # noqa: E731
    table = markdown_table(
        ["problems", "solved (public)", "verified (hidden)", "mean rollouts", "mean tree size", "mean depth"],
        [[n, f"{solved_public} ({pct(solved_public / n)})", f"{verified} ({pct(verified / n)})",
          f"{mean('rollouts'):.2f}", f"{mean('tree_size'):.2f}", f"{mean('tree_depth'):.2f}"]],
    )
    stats = plots.agent_stats(traces)
    agents = markdown_table(
        ["agent", "programs", "passing all public tests", "thoughts proposed", "won a verified problem"],
        [[a, s["programs"], pct(s["solve_rate"]), s["thoughts"], s["verified_wins"]] for a, s in stats.items()],
    )
    families = plots.by_family([{**r, "v": r["hidden_passed_all"]} for r in traces], "v")
    fam = markdown_table(["family", *families], [["verified", *(pct(v) for v in families.values())]])
    plots.boost_figure(traces, storage.join(report_dir, "boost_tree.png"))
    return f"## Boost: MC-Tree-of-Agents\n\n{table}\n{agents}\n{fam}\n![tree statistics](boost_tree.png)\n"


def reference_section(run_dir: str, report_dir: str) -> str:
    path = storage.join(run_dir, "eval", "reference", "table.md")
    if not storage.exists(path):
        return "## Reference solutions through the sandbox\n\n" + _missing("eval/reference/table.md")
    return "## Reference solutions through the sandbox\n\n" + storage.read_text(path)


def setup_section(run_dir: str, report_dir: str) -> str:
    config_path = storage.join(run_dir, "config.yaml")
    config = storage.read_text(config_path) if storage.exists(config_path) else "(config.yaml missing)\n"
    table = markdown_table(["package", "version"], [[k, v] for k, v in versions().items()])
    return f"## Configuration and versions\n\n{table}\n<details><summary>config.yaml</summary>\n\n```yaml\n{config}```\n</details>\n"


SECTIONS: list[Section] = [boost_section, reference_section, setup_section]


def build_report(run_dir: str, sections: list[Section] | None = None) -> str:
    """Write `<run_dir>/report/report.md` (and its PNGs); returns the Markdown path."""
    report_dir = storage.join(run_dir, "report")
    storage.makedirs(report_dir)
    parts = [f"# bdc-ray run report\n\nRun folder: `{run_dir}`\n"]
    parts += [section(run_dir, report_dir) for section in (sections or SECTIONS)]
    path = storage.join(report_dir, "report.md")
    storage.write_text_atomic(path, "\n".join(parts))
    return path
