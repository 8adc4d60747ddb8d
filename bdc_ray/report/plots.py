"""Matplotlib figures of the report, each a function from plain records to a PNG on storage.

The Agg backend is forced: reports are built in jobs and CI without a display.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from bdc_ray import storage  # noqa: E402
from bdc_ray.artifacts.traces import TraceRecord  # noqa: E402


def save_png(fig, path: str) -> str:
    """Write the figure to `path` (local or object storage) in one atomic put."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    storage.write_bytes_atomic(path, buf.getvalue())
    return path


def agent_stats(traces: Sequence[TraceRecord]) -> dict[str, dict[str, float]]:
    """Per agent: programs written, share of them passing every public test, thoughts proposed,
    and how many hidden-verified problems its program won."""
    programs: Counter[str] = Counter()
    passing: Counter[str] = Counter()
    thoughts: Counter[str] = Counter()
    won: Counter[str] = Counter()
    for r in traces:
        for ev in r.evaluations:
            programs[ev.agent] += 1
            passing[ev.agent] += ev.reward >= 1.0
        thoughts.update(r.thoughts_by_agent)
        if r.hidden_passed_all and r.best_agent:
            won[r.best_agent] += 1
    return {
        a: {
            "programs": programs[a],
            "solve_rate": passing[a] / programs[a] if programs[a] else 0.0,
            "thoughts": thoughts[a],
            "verified_wins": won[a],
        }
        for a in sorted(programs)
    }


def boost_figure(traces: Sequence[TraceRecord], path: str) -> str:
    """Rollouts and tree depth per problem, and each agent's program solve rate."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    rollouts = [r.rollouts for r in traces]
    depths = [r.tree_depth for r in traces]
    axes[0].hist(rollouts, bins=range(0, max(rollouts, default=0) + 2), color="#4c72b0", edgecolor="white", align="left")
    axes[0].set(title="rollouts per problem", xlabel="rollouts", ylabel="problems")
    axes[1].hist(depths, bins=range(0, max(depths, default=0) + 2), color="#55a868", edgecolor="white", align="left")
    axes[1].set(title="tree depth (deepest state)", xlabel="depth", ylabel="problems")
    stats = agent_stats(traces)
    names = list(stats)
    axes[2].bar(names, [100 * stats[a]["solve_rate"] for a in names], color="#c44e52")
    for i, a in enumerate(names):
        axes[2].annotate(f"{stats[a]['programs']} programs", (i, 100 * stats[a]["solve_rate"]), ha="center", va="bottom", fontsize=8)
    axes[2].set(title="programs passing all public tests, per agent", ylabel="%", ylim=(0, 105))
    for ax in axes[:2]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"Boost: {len(traces)} problems", y=1.04)
    return save_png(fig, path)


def anytime_shares(traces: Sequence[TraceRecord]) -> tuple[list[int], list[float], list[float]]:
    """After g generations (0..the largest search), the share of problems whose chosen program
    passes every public test, and the share where that program is a plain sample of the root
    (no thought in its prompt): the gap between the two is what the tree added by then. A
    search that stopped early keeps its last answer for every later g."""
    total = max((sum(r.llm_generations.values()) for r in traces), default=0)
    steps = list(range(total + 1))
    solved = [0.0] * len(steps)
    at_root = [0.0] * len(steps)
    for r in traces:
        for point in r.anytime:
            if point.reward >= 1.0:
                for g in steps[point.generations:]:
                    solved[g] += 1
                    at_root[g] += point.prefix_depth == 0
                break  # the chosen program changes only to a better one: the first full-reward point is final
    n = max(len(traces), 1)
    return steps, [100 * v / n for v in solved], [100 * v / n for v in at_root]


def anytime_figure(traces: Sequence[TraceRecord], path: str) -> str:
    """The anytime curve of `anytime_shares`: what the search had solved after each generation."""
    steps, solved, at_root = anytime_shares(traces)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.step(steps, solved, where="post", label="solved (public tests)", color="#4c72b0")
    ax.step(steps, at_root, where="post", label="... by a plain sample of the root", color="#dd8452", linestyle="--")
    ax.set(title=f"Boost anytime curve ({len(traces)} problems)", xlabel="generations spent on a problem",
           ylabel="% of problems", ylim=(0, 105))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    return save_png(fig, path)


def grouped_bars(
    rows: dict[str, dict[str, float]], path: str, title: str, ylabel: str = "%", scale: float = 100.0
) -> str:
    """One group of bars per column key, one bar per row (method), e.g. pass@1 per family."""
    groups = sorted({g for values in rows.values() for g in values})
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) * max(1, len(rows)) / 2), 3.8))
    width = 0.8 / max(1, len(rows))
    for i, (name, values) in enumerate(rows.items()):
        xs = [j + i * width for j in range(len(groups))]
        ax.bar(xs, [scale * values.get(g, 0.0) for g in groups], width=width, label=name)
    ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(groups))], groups)
    ax.set(title=title, ylabel=ylabel)
    ax.legend(fontsize=8, ncols=min(4, max(1, len(rows))))
    return save_png(fig, path)


def heatmap(values: dict[str, dict[str, float]], path: str, title: str, label: str) -> str:
    """Rows x columns of {row: {column: value}} as a coloured grid with each value written in its cell."""
    rows = list(values)
    cols = sorted({c for v in values.values() for c in v})
    grid = [[values[r].get(c, 0.0) for c in cols] for r in rows]
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(cols), 0.9 + 0.45 * len(rows)))
    image = ax.imshow(grid, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="white" if v < 0.6 else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label=label)
    return save_png(fig, path)


def loss_curves(curves: dict[str, Sequence[tuple[int, float]]], path: str, title: str) -> str:
    """Training loss per step, one line per run (expert, baseline)."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, curve in curves.items():
        if curve:
            steps, losses = zip(*curve)
            ax.plot(steps, losses, label=name)
    ax.set(title=title, xlabel="optimizer step", ylabel="loss")
    ax.legend(fontsize=8)
    return save_png(fig, path)


def by_family(values: Sequence[tuple[str | None, float]]) -> dict[str, float]:
    """Mean value per family of (family, value) pairs ('?' for unlabelled ones)."""
    sums: dict[str, list[float]] = defaultdict(list)
    for family, value in values:
        sums[family or "?"].append(value)
    return {f: sum(v) / len(v) for f, v in sorted(sums.items())}
