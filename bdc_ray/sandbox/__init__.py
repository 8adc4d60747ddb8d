"""Hardened execution of untrusted programs against tests.

    from bdc_ray.sandbox import Sandbox, SandboxLimits
    with Sandbox(workers=2, limits=SandboxLimits(time_s=4)) as sb:
        result = sb.run(program, tests)            # RunResult, JSON-serialisable
        results = sb.run_many([(program, tests), ...])

How it is built. The pool (trusted, in the caller's process) starts worker interpreters
(`python -I`, scrubbed environment) that pre-import the usual competitive-programming
modules, enter network, mount, IPC and UTS namespaces once, install a seccomp filter on
themselves, and then fork one child per test. The child becomes PID 1 of a fresh PID
namespace, takes rlimits (address space, CPU, file size, open files, processes), drops to
the worker's own unprivileged uid (or loses all capabilities in a user namespace) and only
then runs the program, in a fresh scratch directory, with stdin, stdout and stderr as memory
files and a result channel on fd 3. The program sees what `python3 prog.py < input` gives a
script (the std streams CPython makes, a fresh `__main__`, builtins only, the interpreter's
shutdown); format extras (the import header of call-based tests, APPS's top-level `return`)
come from the test's `source`. Workers report observed facts; the pool alone decides
verdicts, and only it ever holds expected outputs.

Threat model. Every program is assumed hostile. Covered:
- network: none (own network namespace, no interface up);
- files: `/` read-only; /tmp, /var, /root, /home, /work, /run, /mnt, /srv, /sys, /dev/shm and
  the project directory replaced by empty tmpfs (the Python runtime bound back read-only);
  /proc shows no other uid's processes; only the per-test scratch directory is writable,
  and it is deleted afterwards;
- secrets: no inherited environment, no inherited file descriptors, no pool memory (workers
  are fresh interpreters), expected outputs never enter a worker or a child;
- processes: everything a test spawned dies with its PID namespace, daemons included;
  RLIMIT_NPROC bounds fork bombs per worker uid;
- kernel surface: seccomp denies user namespaces, mount, ptrace, bpf, io_uring, keyrings,
  module loading and similar (seccomp.py lists them);
- verdict forgery: exit statuses, printed markers, atexit handlers, writes to any fd and
  killing the parent (another uid, outside the PID namespace) never produce a pass. Stdio
  verdicts compare stdout in the pool; call verdicts compare, in the pool, a value the child
  serialised with a strict type-tagged encoder (a foreign or subclassed object cannot even be
  encoded), so neither can be forged by anything short of producing the right answer.

Not covered, honestly:
- assertion tests (HumanEval/MBPP) run the test code in the program's own interpreter, so
  their verdict rests on in-process evidence: a per-test nonce, handed over a pipe closed
  before the program starts, frames the completion record written after the test code. A
  program that searches its interpreter's memory (gc, frames, ctypes) can find the nonce,
  and one that monkeypatches modules the test code uses (math.isclose, ...) or the sandbox's
  own harness modules, shadows a builtin name in its globals, installs trace hooks from
  inside the tested function, or races the harness from a thread can subvert the
  assertions. What is stopped: every value an assertion compares must be plain builtin data,
  and a program-defined object may flow only into the program's own code: handed to an
  operator, a truth test, indexing, formatting, or any callable that is not the program's
  (builtins, library and test helpers), the assertion fails (so always-equal objects, lying
  int subclasses and lying arithmetic fail, while `f([Pair(5, 24)], 2)` with the program's
  `Pair` works); builtins are restored and trace hooks removed before the test code runs, and
  the test code is compiled by the pool.
- a child inherits the worker's memory, which may still hold inputs (never expected
  outputs) and outputs of earlier tests run by the same worker.
- seccomp is a deny list (x86_64 only): the rest of the kernel stays reachable, and a kernel
  exploit escapes any namespace sandbox. No cgroup: memory is bounded per process
  (RLIMIT_AS), so `max_processes` processes may each use `memory_mb`.
- without namespaces (isolation="off", or "auto" on a host that refuses them, which logs
  one warning) programs can read world-readable files and reach the network; as non-root
  there is then no separate uid and no process limit.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bdc_ray.sandbox.isolation import IsolationInfo, SandboxIsolationError
    from bdc_ray.sandbox.limits import SandboxLimits
    from bdc_ray.sandbox.pool import Sandbox
    from bdc_ray.sandbox.results import RunResult, TestOutcome

__all__ = ["IsolationInfo", "RunResult", "Sandbox", "SandboxIsolationError", "SandboxLimits", "TestOutcome"]

# Resolved on first use: worker processes import this package too, and must not pay for
# pydantic and the pool they never use (a lean worker forks faster).
_HOMES = {
    "IsolationInfo": "bdc_ray.sandbox.isolation",
    "SandboxIsolationError": "bdc_ray.sandbox.isolation",
    "SandboxLimits": "bdc_ray.sandbox.limits",
    "Sandbox": "bdc_ray.sandbox.pool",
    "RunResult": "bdc_ray.sandbox.results",
    "TestOutcome": "bdc_ray.sandbox.results",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
