"""Hardened execution of untrusted programs against tests.

    from bdc_ray.sandbox import Sandbox, SandboxLimits
    with Sandbox(workers=2, limits=SandboxLimits(time_s=4)) as sb:
        result = sb.run(program, tests)            # RunResult, JSON-serialisable
        results = sb.run_many([(program, tests), ...])

How it is built. The pool (trusted, in the caller's process) starts worker interpreters
(`python -I`, scrubbed environment) that enter network, mount, IPC and UTS namespaces once,
pre-import the usual competitive-programming modules, and then fork one child per test. The
child becomes PID 1 of a fresh PID namespace, takes rlimits (address space, CPU, file size,
open files, processes), drops to the worker's own unprivileged uid (or loses all capabilities
in a user namespace), sets no_new_privs and only then runs the program, from a fresh scratch
directory, with stdin, stdout and stderr as memory files and a result channel on fd 3. The
worker reports observed facts; the pool alone decides verdicts.

Threat model. Every program is assumed hostile. Covered:
- network: none (own network namespace, no interface up);
- files: `/` read-only; /tmp, /root, /home, /work, /run, /mnt, /srv, /sys, /dev/shm, the
  project and the caller's cwd replaced by empty tmpfs; /proc shows no other uid's
  processes; only the per-test scratch directory is writable and it is deleted afterwards;
- secrets: no inherited environment, no inherited file descriptors, no pool memory (workers
  are fresh interpreters), expected outputs never enter a worker or a child;
- processes: everything a test spawned dies with its PID namespace, daemons included;
  RLIMIT_NPROC bounds fork bombs per worker uid;
- verdict forgery: exit statuses, printed markers, atexit handlers, writes to any fd and
  killing the parent (another uid, outside the PID namespace) never produce a pass. Stdio
  verdicts compare stdout in the pool; call verdicts compare, in the pool, a value the child
  serialised with a strict type-tagged encoder (a foreign or subclassed object cannot even be
  encoded), so neither can be forged by anything short of producing the right answer.

Not covered, honestly:
- assertion tests (HumanEval/MBPP) run the test code in the program's own interpreter, so
  their verdict rests on in-process evidence: a per-test nonce, handed over a pipe closed
  before the program starts, frames the completion record written after the test code. A
  program that searches interpreter memory (gc, frames, ctypes, /proc/self/mem) can find the
  nonce, and one that monkeypatches modules the test code uses (math.isclose, ...), shadows
  a builtin name in its globals, installs trace hooks from inside the tested function, or
  races the harness from a thread can subvert the assertions. Comparisons inside assertions
  require plain builtin operands and builtins are restored before the tests run, which
  stops the always-equal object and rebinding `builtins`, but not the above.
- a child inherits the worker's memory, which may still hold inputs (never expected
  outputs) and outputs of earlier tests run by the same worker.
- no seccomp filter: the kernel's whole syscall surface is reachable (a kernel exploit
  escapes any namespace sandbox); no cgroup: memory is bounded per process (RLIMIT_AS), so
  `max_processes` processes may each use `memory_mb`.
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
