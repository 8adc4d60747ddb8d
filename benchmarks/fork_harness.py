"""A plain fork-per-sample HumanEval harness, as a whole process: the floor `bdc eval` is timed against.

For each sample it forks this interpreter; the child moves into a fresh temporary directory,
takes an address-space and a CPU limit and an alarm, silences its output and runs
prompt + completion + test + `check(entry_point)`; exit status 0 is a pass. No namespaces, no
seccomp, no separate uid: what a hand-written harness typically gives. Nothing from bdc_ray is
imported, so its start-up is the interpreter's alone.

    python benchmarks/fork_harness.py --problems HumanEval.jsonl.gz --samples S --workers 2

Prints one JSON line: {"pass@1": ..., "samples": ..., "passed": ...}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import signal
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

MEMORY_BYTES = 1 << 30


def read_jsonl(path: str) -> list[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def passes(program: str, timeout_s: int) -> bool:
    scratch = tempfile.mkdtemp(prefix="fork-harness-")
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.chdir(scratch)
                resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
                resource.setrlimit(resource.RLIMIT_CPU, (timeout_s, timeout_s))
                signal.alarm(timeout_s)
                sink = os.open(os.devnull, os.O_WRONLY)
                os.dup2(sink, 1)
                os.dup2(sink, 2)
                exec(compile(program, "<sample>", "exec"), {"__name__": "__main__"})
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", required=True)
    parser.add_argument("--samples", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=10, help="seconds per sample (wall alarm and CPU)")
    args = parser.parse_args()

    problems = {p["task_id"]: p for p in read_jsonl(args.problems)}
    samples = read_jsonl(args.samples)
    programs = [
        problems[s["task_id"]]["prompt"] + s["completion"] + "\n" + problems[s["task_id"]]["test"]
        + f"\ncheck({problems[s['task_id']]['entry_point']})\n"
        for s in samples
    ]
    with ThreadPoolExecutor(max_workers=args.workers) as threads:
        verdicts = list(threads.map(lambda program: passes(program, args.timeout), programs))
    per_task: dict[str, list[bool]] = defaultdict(list)
    for sample, verdict in zip(samples, verdicts):
        per_task[sample["task_id"]].append(verdict)
    pass1 = sum(sum(v) / len(v) for v in per_task.values()) / len(per_task)
    print(json.dumps({"pass@1": pass1, "samples": len(samples), "passed": sum(verdicts)}))


if __name__ == "__main__":
    main()
