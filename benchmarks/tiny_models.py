"""Build the default tiny agents and score them on the synthetic suite's held-out splits.

Two genuinely different agents (seed 0 on every training task; seed 1 on a different half of
them), each built with the default config (~4 minutes on one thread), then per-family greedy
pass@1 and pass@10 at T=0.8 on `heldout` and `heldout_comp`, all tests (public + hidden).

`--schedule both` builds the agents twice, one after the other and then both at once (one
thread each on the 2 cores), into separate folders: it reports which is faster and checks that
the two schedules gave identical weights (builds are step-based, so load must not change them).

    .venv/bin/python benchmarks/tiny_models.py --out runs/tiny --schedule both --markdown runs/tiny/README.md
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from support import ROOT  # first: the repository on the path, offline settings

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bdc_ray.tiny import TinyModelConfig, build_dir, build_tiny, load_build_info  # noqa: E402
from bdc_ray.tiny import TinyEval, evaluate_tiny  # noqa: E402
from bdc_ray.problems.synth import FAMILIES, generate_suite  # noqa: E402

AGENTS = {
    "agent-a": TinyModelConfig(name="agent-a", seed=0),
    "agent-b": TinyModelConfig(name="agent-b", seed=1, train_fraction=0.5),
}


def _build(config: TinyModelConfig, root: Path, progress: bool) -> tuple[str, float]:
    started = time.monotonic()
    path = build_tiny(config, root, threads=1, progress=progress)
    return str(path), time.monotonic() - started


def build_all(
    agents: dict[str, TinyModelConfig], root: Path, parallel: bool, fresh: bool
) -> tuple[dict[str, Path], float]:
    """Build every agent under `root`; returns their folders and the wall time of the whole schedule."""
    if fresh:
        for config in agents.values():
            shutil.rmtree(build_dir(config, root), ignore_errors=True)
    started = time.monotonic()
    if parallel:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(len(agents), mp_context=context) as pool:
            futures = {name: pool.submit(_build, config, root, False) for name, config in agents.items()}
            paths = {name: Path(f.result()[0]) for name, f in futures.items()}
    else:
        paths = {name: Path(_build(config, root, True)[0]) for name, config in agents.items()}
    return paths, time.monotonic() - started


def same_weights(a: Path, b: Path) -> bool:
    return (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def build_table(schedules: dict[str, tuple[dict[str, Path], float]]) -> Table:
    table = Table(title="Tiny agent builds (one torch thread each)")
    for column in ("schedule", "agent", "steps", "final loss", "train s", "build s", "tokens/s", "schedule wall s"):
        table.add_column(column, justify="left" if column in ("schedule", "agent") else "right")
    for schedule, (paths, wall) in schedules.items():
        for name, path in paths.items():
            info = load_build_info(path)
            steps = f"{info.steps_done}/{info.config.steps}" + ("" if info.complete else " CUT")
            table.add_row(
                schedule, name, steps, f"{info.final_loss:.3f}", f"{info.train_s:.0f}", f"{info.wall_s:.0f}",
                f"{info.tokens_per_s:.0f}", f"{wall:.0f}",
            )
    return table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _cells(result: TinyEval) -> list[str]:
    """Greedy pass@1 / pass@k per family, then overall."""
    scores = [result.by_family.get(f) for f in FAMILIES] + [result.overall]
    return ["-" if s is None else f"{_pct(s.greedy_pass_at_1)} / {_pct(s.pass_at_k)}" for s in scores]


def score_table(results: dict[tuple[str, str], TinyEval], k: int) -> Table:
    table = Table(title=f"Held-out greedy pass@1 / pass@{k} (T=0.8), %")
    table.add_column("agent")
    table.add_column("split")
    for column in (*FAMILIES, "overall"):
        table.add_column(column, justify="right")
    for (agent, split), result in results.items():
        table.add_row(agent, split, *_cells(result))
    return table


def markdown(results: dict[tuple[str, str], TinyEval], schedules: dict, k: int) -> str:
    lines = [
        f"Held-out greedy pass@1 / pass@{k} at T=0.8 (%, all tests), default tiny agents "
        "(4 layers x 128, ~0.9M parameters, one CPU thread):",
        "",
        "| agent | split | " + " | ".join((*FAMILIES, "overall")) + " |",
        "|" + "---|" * (len(FAMILIES) + 3),
    ]
    lines += [f"| {agent} | {split} | " + " | ".join(_cells(r)) + " |" for (agent, split), r in results.items()]
    lines += [
        "",
        "| schedule | agent | steps | final loss | train s | tokens/s | schedule wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for schedule, (paths, wall) in schedules.items():
        for name, path in paths.items():
            info = load_build_info(path)
            lines.append(
                f"| {schedule} | {name} | {info.steps_done} | {info.final_loss:.3f} | {info.train_s:.0f} | "
                f"{info.tokens_per_s:.0f} | {wall:.0f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "runs" / "tiny_models"), help="Root of the model folders.")
    parser.add_argument("--schedule", choices=["sequential", "parallel", "both"], default="parallel")
    parser.add_argument("--fresh", action="store_true", help="Delete cached builds first, so build times are real.")
    parser.add_argument("--samples", type=int, default=10, help="Samples per problem for pass@k (k = samples).")
    parser.add_argument("--heldout-per-family", type=int, default=20)
    parser.add_argument("--comp-per-family", type=int, default=10)
    parser.add_argument(
        "--budget-s",
        type=float,
        help="Override each build's safety cap, so a busy machine slows the builds down instead of cutting them "
        "short (the weights do not depend on it; only a cut build would differ).",
    )
    parser.add_argument("--markdown", help="Also write the Markdown snippet here.")
    parser.add_argument("--json", help="Also write every score and build record here.")
    args = parser.parse_args()

    console = Console(width=max(Console().width, 140))
    out = Path(args.out)
    agents = {
        name: config if args.budget_s is None else config.model_copy(update={"budget_s": args.budget_s})
        for name, config in AGENTS.items()
    }
    schedules: dict[str, tuple[dict[str, Path], float]] = {}
    for schedule in ("sequential", "parallel") if args.schedule == "both" else (args.schedule,):
        console.print(f"[bold]building {', '.join(agents)} ({schedule})[/bold]")
        fresh = args.fresh or args.schedule == "both"
        schedules[schedule] = build_all(agents, out / schedule, schedule == "parallel", fresh)
    console.print(build_table(schedules))
    if len(schedules) == 2:
        paths = list(schedules.values())
        for name in agents:
            verdict = "identical" if same_weights(paths[0][0][name], paths[1][0][name]) else "DIFFERENT"
            console.print(f"{name}: sequential and parallel builds have {verdict} weights")

    paths = next(iter(schedules.values()))[0]
    results: dict[tuple[str, str], TinyEval] = {}
    for name, config in agents.items():
        suite = generate_suite(
            config.synth.model_copy(
                update={
                    "train_per_family": 0,
                    "heldout_per_family": args.heldout_per_family,
                    "heldout_comp_per_family": args.comp_per_family,
                }
            )
        )
        for split in ("heldout", "heldout_comp"):
            started = time.monotonic()
            result = evaluate_tiny(paths[name], getattr(suite, split), samples=args.samples)
            results[(name, split)] = result
            console.print(
                f"{name} {split}: {result.overall.problems} problems, {result.generated_tokens} tokens generated "
                f"in {result.generation_s:.0f} s, sandbox {result.sandbox_s:.0f} s, "
                f"total {time.monotonic() - started:.0f} s"
            )
    console.print(score_table(results, args.samples))
    snippet = markdown(results, schedules, args.samples)
    print(snippet)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(snippet)
    if args.json:
        record = {
            "scores": {f"{agent}/{split}": r.model_dump() for (agent, split), r in results.items()},
            "builds": {
                schedule: {"wall_s": wall, **{n: load_build_info(p).model_dump(mode="json") for n, p in ps.items()}}
                for schedule, (ps, wall) in schedules.items()
            },
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
