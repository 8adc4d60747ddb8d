"""Helpers shared by the sandbox tests."""

from __future__ import annotations

import os
import textwrap

from bdc_ray.problems.types import AssertTest, CallTest, StdioTest
from bdc_ray.sandbox import RunResult, Sandbox, SandboxLimits

LIMITS = SandboxLimits(time_s=1.5, program_time_s=10, memory_mb=256, max_processes=16, output_bytes=100_000)
WIDE_TIME = {"time_s": 30.0, "program_time_s": 60.0}
"""Time limits for programs whose verdict is not a time-out: the limits count wall-clock time, and a
loaded machine must not turn a correct program's verdict into one."""


def src(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


def run_stdio(sb: Sandbox, program: str, stdin: str = "", expected: str = "", source=None, **kw) -> RunResult:
    return sb.run(src(program), [StdioTest(input=stdin, output=expected, source=source)], **kw)


def run_call(sb: Sandbox, program: str, fn_name: str, args: list, expected, **kw) -> RunResult:
    return sb.run(src(program), [CallTest(fn_name=fn_name, args=args, expected=expected)], **kw)


def run_assert(sb: Sandbox, program: str, code: str, setup: str = "", **kw) -> RunResult:
    return sb.run(src(program), [AssertTest(code=src(code), setup=setup)], **kw)


def processes_of(uids: list[int]) -> list[int]:
    """Live host pids whose real uid is one of `uids` (sandbox uids: so only as root).

    Zombies are dead and excluded: when a worker is killed, its last child is reparented to
    the host's init, which reaps it in its own time. As non-root the sandbox has no uid of
    its own (its uids are ours, this test process included), so there is nothing to check.
    """
    if os.geteuid() != 0:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
            except OSError:
                continue
            if int(fields["Uid"].split()[0]) in uids and not fields["State"].strip().startswith("Z"):
                pids.append(int(entry))
    return pids


def descendants_of(pid: int) -> list[int]:
    """Live descendants of `pid` (by walking /proc parent links)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [p for p, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found
