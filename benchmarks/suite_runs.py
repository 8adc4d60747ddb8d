"""The README's test command, N times in a row on this clone: each run's exit status and wall time.

Issue 14 was a crash AFTER every test passed (SIGSEGV during interpreter shutdown, exit status
139) that one run in two or three showed and the next did not: one run proves nothing, so this
runs the command as a user types it (read out of README.md, like .ci/run) several times and
says how each one ended. Each run's output goes to `<log-dir>/run-<i>.log`; the fault handler
stays on through interpreter shutdown (PYTHONFAULTHANDLER=1) and the session's exit report
(tests/session_report.py) lists what was still alive, so a crash names itself in that log.

    .venv/bin/python benchmarks/suite_runs.py --runs 5

Exit status: 0 when every run exited 0, else 1.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_command(n: int) -> str:
    """The n-th ```bash block of README.md (1-based), as .ci/run reads it."""
    blocks = re.findall(r"^```bash\n(.*?)^```$", (ROOT / "README.md").read_text(), flags=re.M | re.S)
    return blocks[n - 1].strip()


def describe(status: int) -> str:
    """Exit status as the shell reports it; 128+N is death by signal N."""
    if status > 128 and status - 128 in signal.valid_signals():
        return f"{status} ({signal.Signals(status - 128).name})"
    return str(status)


def summary_line(log: Path) -> str:
    """pytest's final verdict line ('575 passed, 37 warnings in 549.1s'), if it printed one."""
    verdicts = [line.strip("= \n") for line in log.read_text(errors="replace").splitlines()
                if re.search(r"\b(passed|failed|error)\b.* in [\d.]+s", line)]
    return verdicts[-1] if verdicts else "(no pytest verdict line)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--log-dir", type=Path, default=ROOT / "runs" / "test-runs")
    args = parser.parse_args()

    command = readme_command(2)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONFAULTHANDLER": "1", "PYTEST_ADDOPTS": "-q --durations=15 --exit-report"}
    print(f"command: {command}  ({args.runs} runs, logs in {args.log_dir})", flush=True)
    statuses = []
    for i in range(1, args.runs + 1):
        log = args.log_dir / f"run-{i}.log"
        start = time.monotonic()
        with log.open("wb") as out:
            status = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
        wall = time.monotonic() - start
        if status < 0:  # subprocess reports death by signal as -N; the shell says 128+N
            status = 128 - status
        statuses.append(status)
        print(f"run {i}: exit {describe(status)}, {wall:.0f} s wall, {summary_line(log)}", flush=True)
    failed = sum(s != 0 for s in statuses)
    print(f"{args.runs - failed}/{args.runs} runs exited 0")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
