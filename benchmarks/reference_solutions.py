"""`bdc eval --reference` over the public benchmark copies in ../shared/data.

Every dataset's own reference solutions run through the sandbox pool on a local Ray cluster.
Expected: HumanEval 164/164 and sanitized MBPP 427/427; for APPS the count passing and every
failure category (wrong answer, crash, timeout, ...) with the problems behind each.

    .venv/bin/python benchmarks/reference_solutions.py --data ../shared/data --out runs/reference

`--differential` instead runs EVERY reference solution of every problem (not only the first)
twice, as plain `python3` (bdc_ray.sandbox.plain) and through a local sandbox, with the same
per-benchmark limits and the same judge, prints the verdict counts side by side and lists
every solution whose two verdicts differ, with both reasons:

    .venv/bin/python benchmarks/reference_solutions.py --data ../shared/data --differential
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bdc_ray.config import load_config  # noqa: E402
from bdc_ray.eval.evaluate import FAILURE_LABELS, reference_samples  # noqa: E402
from bdc_ray.eval.runner import evaluate_dataset  # noqa: E402
from bdc_ray.sandbox.ray_pool import make_pool  # noqa: E402
from bdc_ray.console import wide_console  # noqa: E402
from bdc_ray.eval.tables import summary_markdown, summary_table, with_groups  # noqa: E402
from bdc_ray.problems.loaders import load_problems  # noqa: E402
from bdc_ray.ray_session import init_ray  # noqa: E402
from bdc_ray.sandbox import Sandbox  # noqa: E402
from bdc_ray.sandbox.plain import run_plain  # noqa: E402

DATASETS = [
    ("humaneval", "humaneval/HumanEval.jsonl.gz"),
    ("mbpp-sanitized", "mbpp/sanitized-mbpp.json"),
    ("apps-introductory50", "apps/codechain_introductory50.jsonl"),
    ("apps-train5", "apps/coderl_apps_train5.jsonl"),
    ("apps-test4", "apps/appseval_apps_test4.jsonl"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "reference"))
    parser.add_argument(
        "--time-s", type=float, default=None, help="One per-test limit for every benchmark (default: the config's)."
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--differential", action="store_true", help="Plain python3 vs the sandbox, every solution.")
    parser.add_argument("--solutions", type=int, default=None, help="With --differential: at most this many per problem.")
    args = parser.parse_args()

    console = wide_console()
    limits: dict = {"program_time_s": 600}
    if args.time_s is not None:
        limits.update(time_s=args.time_s, time_s_by_source={})
    cfg = load_config(overrides={"sandbox": {"workers_per_actor": args.workers, "limits": limits}})
    if args.differential:
        differential(console, Path(args.data), cfg.sandbox.limits, args.workers, args.solutions)
        return
    init_ray(cfg.ray)
    pool = make_pool(cfg.sandbox, cfg.resources.sandbox.ray_options())
    rows, failures = [], defaultdict(list)
    try:
        for name, rel in DATASETS:
            path = Path(args.data) / rel
            if not path.exists():
                console.print(f"[yellow]{path} missing: skipped[/yellow]")
                continue
            problems, _ = load_problems(str(path))
            samples, missing = reference_samples(problems)
            if missing:
                console.print(f"{name}: {len(missing)} problem(s) without a reference solution")
            outcome = evaluate_dataset(pool, name, problems, samples, [1], out_dir=f"{args.out}/{name}")
            rows += with_groups(outcome.summary, "difficulty") if name.startswith("apps") else [outcome.summary]
            for r in outcome.records:
                if r["status"] != "passed":
                    failures[name].append(r)
    finally:
        pool.shutdown()

    console.print(summary_table(rows, title="Reference solutions through the bdc sandbox"))
    for name, recs in failures.items():
        console.print(f"[bold]{name}[/bold]: {len(recs)} reference solution(s) not passing")
        for r in recs:
            ff = r.get("first_failure") or {}
            detail = (ff.get("error") or "").strip().splitlines()[-1:] or [f"expected {str(ff.get('expected'))[:60]!r}, got {str(ff.get('actual'))[:60]!r}"]
            console.print(f"  {r['task_id']}: {FAILURE_LABELS.get(r['status'], r['status'])} ({r['passed']}/{r['total']} tests) {detail[0][:160]}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "table.md").write_text(summary_markdown(rows))
    console.print(f"markdown table: {Path(args.out) / 'table.md'}")


STATUSES = ("passed", "failed", "error", "timeout", "memory", "output-limit")
LIMIT_STATUSES = {"timeout", "memory"}


def differential(console, data: Path, limits, workers: int, per_problem: int | None) -> None:
    """Every reference solution as plain python3 and in the sandbox; counts side by side."""
    rows, disagreements = [], []
    started = time.monotonic()
    with Sandbox(workers=workers, limits=limits) as sandbox, ThreadPoolExecutor(workers) as threads:
        for name, rel in DATASETS:
            path = data / rel
            if not path.exists():
                console.print(f"[yellow]{path} missing: skipped[/yellow]")
                continue
            problems, _ = load_problems(str(path))
            jobs = [
                (p.id, i, p.program_from(solution), p.tests)
                for p in problems
                for i, solution in enumerate(p.reference_solutions[:per_problem])
            ]
            if not jobs:
                console.print(f"{name}: no reference solutions")
                continue
            t0 = time.monotonic()
            plain = list(threads.map(lambda j: run_plain(j[2], j[3], limits, stop_on_first_failure=True), jobs))
            plain_s = time.monotonic() - t0
            t0 = time.monotonic()
            boxed = sandbox.run_many([(j[2], j[3]) for j in jobs], stop_on_first_failure=True)
            boxed_s = time.monotonic() - t0
            counts = {side: Counter(r.status for r in results) for side, results in (("plain", plain), ("sandbox", boxed))}
            differ = [(j, a, b) for j, a, b in zip(jobs, plain, boxed) if a.status != b.status]
            disagreements += [(name, *d) for d in differ]
            rows.append((name, len(problems), len(jobs), counts, differ, plain_s, boxed_s))
            console.print(f"{name}: {len(jobs)} solutions, {len(differ)} disagreements ({plain_s:.0f} s / {boxed_s:.0f} s)")
    table = Table(title=f"Reference solutions: plain python3 vs the bdc sandbox ({time.monotonic() - started:.0f} s)")
    for column in ("dataset", "problems", "solutions", "plain python: passed", "sandbox: passed", "plain python: other",
                   "sandbox: other", "disagree", "limit-only", "plain s", "sandbox s"):
        table.add_column(column, justify="left" if column == "dataset" else "right")
    for name, n_problems, n_solutions, counts, differ, plain_s, boxed_s in rows:
        limit_only = sum(1 for _, a, b in differ if {a.status, b.status} & LIMIT_STATUSES)
        table.add_row(
            name, str(n_problems), str(n_solutions), str(counts["plain"]["passed"]), str(counts["sandbox"]["passed"]),
            _others(counts["plain"]), _others(counts["sandbox"]), str(len(differ)), str(limit_only),
            f"{plain_s:.0f}", f"{boxed_s:.0f}",
        )
    console.print(table)
    for name, (task, index, _, _), a, b in disagreements:
        kind = "limit" if {a.status, b.status} & LIMIT_STATUSES else "DISAGREE"
        console.print(f"{kind} {name} {task} solution {index}: plain {a.status} ({_why(a)}) | sandbox {b.status} ({_why(b)})")


def _others(counts: Counter) -> str:
    return ", ".join(f"{s} {counts[s]}" for s in STATUSES[1:] if counts[s]) or "-"


def _why(result) -> str:
    failure = result.first_failure
    if failure is None:
        return result.error or "all tests passed"
    lines = (failure.error or "").strip().splitlines()
    return f"test {failure.index}: {failure.detail[:100]}" + (f" / {lines[-1][:100]}" if lines else "")


if __name__ == "__main__":
    main()
