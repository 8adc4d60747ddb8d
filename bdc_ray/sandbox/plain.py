"""Reference runs: a program run by plain `python3 solution.py < input`, WITHOUT isolation.

For trusted programs only (benchmark reference solutions, the fidelity corpus of the
tests): it exists to measure that the sandbox judges programs as plain Python would. Each
test becomes the script a benchmark harness would run (the stdin program itself; for call
tests the import header, the program and a call of the function; for assertion tests the
program, the setup and the asserts, in MBPP's order) and runs in a fresh interpreter, the
same one the sandbox's workers use, with the same rlimits (address space, CPU seconds,
output size, open files) and environment, in a fresh scratch folder, its stdin a file.
What it observes goes through the sandbox's own judge (`runs.run_tests`), so the two differ
in nothing but the execution. Never run generated code here: use `Sandbox`.

Known limit differences: as root, RLIMIT_NPROC binds nobody, so `max_processes` is not
enforced here; the address-space limit covers a fresh interpreter here but a fork of a
worker that pre-imported the header modules in the sandbox; the sandboxed program runs 9
frames deeper (the worker's own stack), so a recursion that ends within 9 frames of its limit
differs.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence

from pydantic import TypeAdapter

from bdc_ray.problems.types import Test
from bdc_ray.sandbox import evidence, launch
from bdc_ray.sandbox.confine import OPEN_FILES, sandbox_env
from bdc_ray.sandbox.header import HEADER
from bdc_ray.sandbox.limits import SandboxLimits
from bdc_ray.sandbox.messages import Execution, Job
from bdc_ray.sandbox.results import RunResult
from bdc_ray.sandbox.runs import run_tests
from bdc_ray.sandbox.source import script_text
from bdc_ray.sandbox.worker import STDERR_TAIL_BYTES

_TESTS = TypeAdapter(list[Test])
SCRIPT = "solution.py"
RESULT_FD = 3
TRACEBACK_BYTES = 65536

_CALL_DRIVER = """
def __bdc_call__():
    import json, os, sys
    sys.path.insert(0, {root!r})
    from bdc_ray.sandbox import evidence, harness, values
    with open({call!r}) as f:
        call = json.load(f)
    value = harness.resolve(globals(), call["fn_name"])(*call["args"])
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * values.MAX_DEPTH))
    record = evidence.frame(bytes.fromhex(call["nonce"]), {{"kind": "return", "value": values.encode(value)}})
    os.write({fd}, record)
__bdc_call__()
"""
_DONE = "__import__('os').write({fd}, {record!r})\n"
_TRACEBACK = "Traceback (most recent call last):"
_MODULE_FRAME = re.compile(r'File "(?:[^"]*/)?' + re.escape(SCRIPT) + r'", line (\d+), in <module>')


def run_plain(
    program: str, tests: Sequence[Test], limits: SandboxLimits | None = None, *, stop_on_first_failure: bool = False
) -> RunResult:
    """Run a TRUSTED `program` against `tests` in plain python3 and judge it like `Sandbox.run`."""
    checked = _TESTS.validate_python(list(tests))
    if not checked:
        return RunResult.refused("no tests: a program cannot pass an empty test list")
    return run_tests(program, checked, limits or SandboxLimits(), execute, stop_on_first_failure)


def execute(job: Job) -> Execution:
    """Run one job as a script in a fresh interpreter and report what happened."""
    nonce = os.urandom(evidence.NONCE_BYTES)
    with tempfile.TemporaryDirectory(prefix="bdc-plain-") as scratch:
        script, phases = _script(job, nonce, scratch)
        with open(os.path.join(scratch, SCRIPT), "w", encoding="utf-8") as f:
            f.write(script)
        paths = {name: os.path.join(scratch, f".{name}") for name in ("stdin", "stdout", "stderr", "record")}
        with open(paths["stdin"], "wb") as f:
            f.write(job.stdin)
        with (
            open(paths["stdin"], "rb") as stdin,
            open(paths["stdout"], "wb") as stdout,
            open(paths["stderr"], "wb") as stderr,
            open(paths["record"], "wb") as record,
        ):
            wall, status, usage, killed = _run(job, scratch, stdin, stdout, stderr, record.fileno())
        out_size, err_size, rec_size = (os.path.getsize(paths[n]) for n in ("stdout", "stderr", "record"))
        stdout_bytes, record_bytes = (_head(paths[n], job.output_bytes) for n in ("stdout", "record"))
        stderr_tail = _tail(paths["stderr"], TRACEBACK_BYTES)
    signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    cpu = usage.ru_utime + usage.ru_stime
    if job.kind == "assert" and not record_bytes and exit_code not in (None, 0):
        record_bytes = evidence.frame(nonce, _exception(stderr_tail, phases))
    return Execution(
        wall_s=wall,
        cpu_s=cpu,
        exit_code=exit_code,
        signal=signum,
        timed_out=killed or (signum == signal.SIGKILL and cpu >= job.cpu_s - 0.05),
        stdout=stdout_bytes,
        stdout_overflow=out_size > job.output_bytes,
        stderr_tail=stderr_tail[-STDERR_TAIL_BYTES:],
        stderr_overflow=err_size > job.output_bytes,
        record=record_bytes,
        record_overflow=rec_size > job.output_bytes,
        nonce=nonce,
    )


def _script(job: Job, nonce: bytes, scratch: str) -> tuple[str, list[tuple[int, str]]]:
    """The script of `job`, and for assertion tests the first line of each of its parts."""
    if job.kind == "stdio":
        return script_text(job.program, job.wrap), []
    if job.kind == "call":
        call = os.path.join(scratch, ".call.json")
        with open(call, "w", encoding="utf-8") as f:
            json.dump({"fn_name": job.fn_name, "args": job.args, "nonce": nonce.hex()}, f)
        driver = _CALL_DRIVER.format(root=launch.project_root(), call=call, fd=RESULT_FD)
        return f"{HEADER}{job.program}\n{driver}", []
    parts = [("program", job.program), ("setup", job.setup), ("test", job.code)]
    phases, line = [], 1
    for phase, text in parts:
        phases.append((line, phase))
        line += text.count("\n") + 1
    done = _DONE.format(fd=RESULT_FD, record=evidence.frame(nonce, {"kind": "done"}))
    return "\n".join(text for _, text in parts) + "\n" + done, phases


def _run(job: Job, scratch: str, stdin, stdout, stderr, record_fd: int) -> tuple[float, int, os.struct_rusage, bool]:
    def confine() -> None:  # in the child, before exec: the sandbox's rlimits and fd 3
        os.dup2(record_fd, RESULT_FD)
        for which, value in (
            (resource.RLIMIT_AS, job.memory_bytes),
            (resource.RLIMIT_CPU, job.cpu_s),
            (resource.RLIMIT_FSIZE, job.output_bytes + 1),
            (resource.RLIMIT_NOFILE, OPEN_FILES),
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_NPROC, job.max_processes),
        ):
            resource.setrlimit(which, (value, value))

    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, SCRIPT],
        cwd=scratch,
        env=sandbox_env(scratch),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        close_fds=False,  # only fds 0-2 and the result channel are inheritable (PEP 446)
        start_new_session=True,
        preexec_fn=confine,
    )
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(job.wall_s, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    try:
        os.killpg(process.pid, signal.SIGKILL)  # what the program left behind, as the PID namespace would
    except ProcessLookupError:
        pass
    return wall, status, usage, killed.is_set()


def _exception(stderr: bytes, phases: list[tuple[int, str]]) -> dict[str, object]:
    """The exception record the sandbox's harness would have written, read off the traceback
    python3 printed: the phase from the line of the module-level frame, the type from the
    last line."""
    text = stderr.decode("utf-8", errors="replace")
    last = text.rfind(_TRACEBACK)
    if last < 0:
        return {"kind": "exception", "phase": "program", "type": "", "traceback": text[-2000:]}
    block = text[last:]
    frame = _MODULE_FRAME.search(block)
    phase = "compile"
    if frame:
        line = int(frame.group(1))
        phase = next(name for first, name in reversed(phases) if line >= first)
    lines = [line for line in block.splitlines() if line.strip()]
    kind = lines[-1].split(":", 1)[0].strip() if lines else ""
    return {"kind": "exception", "phase": phase, "type": kind.rsplit(".", 1)[-1], "traceback": block[-2000:]}


def _head(path: str, size: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def _tail(path: str, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - size))
        return f.read()
