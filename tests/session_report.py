"""What CI needs to read after a run: time per test directory, and what was still alive at exit.

A crash after the last test (issue 14: SIGSEGV during interpreter shutdown with every test
passed) is caused by something the tests left running: a thread inside a native library, a
child process, a Ray driver connection. This plugin names them at the two moments that matter,
when pytest has torn down every fixture (`pytest_unconfigure`) and after every atexit handler
ran (Ray's `ray.shutdown` among them), just before the interpreter finalizes. Python threads
are listed by name, native threads by their kernel name (/proc/self/task/*/comm), which is
what a core dump's `thread apply all bt` shows beside each stack.

Enabled by `--exit-report`; the per-directory totals print whenever `--durations` is given.
"""

from __future__ import annotations

import atexit
import collections
import os
import sys
import threading
from pathlib import Path

import pytest

_dir_seconds: dict[str, float] = collections.defaultdict(float)
_dir_tests: dict[str, set[str]] = collections.defaultdict(set)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--exit-report", action="store_true",
                     help="print the threads, child processes and Ray state left alive when pytest ends and at exit")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("exit_report"):
        # registered before any test imports Ray, so it runs after Ray's own atexit shutdown (LIFO)
        atexit.register(_report, "after atexit handlers")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    directory = str(Path(report.nodeid.split("::", 1)[0]).parent)
    _dir_seconds[directory] += report.duration
    _dir_tests[directory].add(report.nodeid)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if config.getoption("durations", None) is None or not _dir_seconds:
        return
    terminalreporter.write_sep("=", "time per test directory (set-up + call + tear-down)")
    for directory, seconds in sorted(_dir_seconds.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:8.1f} s  {len(_dir_tests[directory]):4d} tests  {directory}")
    terminalreporter.write_line(f"{sum(_dir_seconds.values()):8.1f} s  total")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if config.getoption("exit_report"):
        _report("after pytest's tear-down")


def alive() -> dict[str, list[str]]:
    """Threads (Python and native), child processes and Ray state of this process, right now."""
    state: dict[str, list[str]] = {
        "python threads": sorted(f"{t.name}{' (daemon)' if t.daemon else ''}" for t in threading.enumerate()),
        "native threads": _native_threads(),
        "child processes": _children(),
    }
    ray = sys.modules.get("ray")
    if ray is not None:
        state["ray"] = [f"initialized={ray.is_initialized()}"]
    return state


def _native_threads() -> list[str]:
    names = collections.Counter()
    for task in Path("/proc/self/task").iterdir():
        try:
            names[(task / "comm").read_text().strip()] += 1
        except OSError:  # the thread ended while being listed
            continue
    return [f"{name} x{count}" if count > 1 else name for name, count in sorted(names.items())]


def _children() -> list[str]:
    try:
        import psutil
    except ImportError:
        return ["(psutil missing)"]
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            found.append(f"{child.pid} {' '.join(child.cmdline())[:160]}")
        except psutil.Error:
            continue
    return found


def _report(moment: str) -> None:
    lines = [f"--- alive {moment} (pid {os.getpid()}) ---"]
    for what, items in alive().items():
        lines.append(f"{what} ({len(items)}): " + ("; ".join(items) if items else "none"))
    # straight to fd 2: at exit sys.stderr may already be closed or captured
    os.write(2, ("\n".join(lines) + "\n").encode())
