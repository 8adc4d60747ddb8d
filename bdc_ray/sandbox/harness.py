"""The code that runs inside the untrusted child, around the program.

It runs after the child dropped its privileges and never decides a verdict: it executes the
program (and the test's inputs), then writes what happened on the result channel (fd 3) and
ends the process with `os._exit`, so that nothing the program registered (atexit handlers,
finalizers) runs after the record is written. Expected outputs are not in this process.
"""

from __future__ import annotations

import atexit
import builtins
import gc
import io
import linecache
import marshal
import os
import sys
import threading
import traceback
import types
from collections.abc import Callable
from typing import Any, NoReturn

from bdc_ray.sandbox import evidence, values
from bdc_ray.sandbox.messages import Job
from bdc_ray.sandbox.source import (
    CALLEE_HELPER,
    PLAIN_HELPER,
    PROGRAM_FILE,
    SETUP_FILE,
    TESTS_FILE,
    VETTED_HELPER,
    compile_program,
)

RESULT_FD = 3
TRACEBACK_CHARS = 2000

# Taken when the trusted worker imports this module, before any untrusted code exists.
_PRISTINE_BUILTINS = dict(builtins.__dict__)
_exit, _write, _getpid, _dict_update, _dict_clear = os._exit, os.write, os.getpid, dict.update, dict.clear
_TRUSTED_FILES = frozenset({__file__, compile_program.__code__.co_filename})
"""The sandbox's own frames (the harness, and `compile_program` for a syntax error): python3
would not show them, and a program's traceback must not name the host's paths."""

Emit = Callable[[dict[str, Any]], None]


class Stage:
    """What every child needs that can be built once in the worker, before any fork.

    A child inherits these objects copy-on-write and is the only one ever to use its copy, so
    building them per test would only add page faults to every test.
    """

    def __init__(self, header: dict[str, Any]):
        self.call_main = _new_main(header)
        # The worker's interpreter was started like `python3` (same locale, no -X/-E
        # surprises): its stdio encoding and error handler are what a script would get.
        reference = sys.__stdout__ or sys.__stdin__
        self.encoding = getattr(reference, "encoding", None) or "utf-8"
        self.errors = getattr(reference, "errors", None) or "strict"


def run(job: Job, nonce: bytes, stage: Stage) -> NoReturn:
    """Execute `job` in this (already confined) process and exit with the program's status."""
    emit = _emitter(nonce)
    del nonce
    streams = _script_stdio(stage.encoding, stage.errors)
    sys.stdin, sys.stdout, sys.stderr = streams
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams
    sys.argv = [PROGRAM_FILE]
    # A script's `__main__` is made per test, so that the garbage collector (which skips
    # what the worker froze) can destroy it at shutdown; call tests reuse the staged module
    # with the import header.
    sys.modules["__main__"] = stage.call_main if job.kind == "call" else _new_main(None)
    status = 70
    try:
        if job.kind == "stdio":
            status = _run_stdio(job, emit)
        elif job.kind == "call":
            status = _run_call(job, emit, sys.modules["__main__"].__dict__)
        else:
            status = _run_assert(job, emit, sys.modules["__main__"].__dict__)
    finally:
        for stream in streams[1:]:  # whatever the program did to sys.stdout
            try:
                if not stream.closed:
                    stream.flush()
            except BaseException:
                pass
        _exit(status)


def _run_stdio(job: Job, emit: Emit) -> int:
    namespace = sys.modules["__main__"].__dict__
    try:
        program = compile_program(job.program, wrap=job.wrap)
    except BaseException as e:
        _report(emit, "compile", e, job, echo=True)
        return 1
    status = 0
    try:
        exec(program, namespace)
    except SystemExit as e:
        status = _exit_status(e.code)
    except BaseException as e:
        _report(emit, "program", e, job, echo=True)
        status = 1
    del namespace, program
    return _shut_down_like_the_interpreter(status)


def _run_call(job: Job, emit: Emit, namespace: dict[str, Any]) -> int:
    phase = "compile"
    try:
        program = compile_program(job.program)
        phase = "program"
        exec(program, namespace)
        phase = "call"
        value = resolve(namespace, job.fn_name)(*job.args)
        phase = "return"
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * values.MAX_DEPTH))
        tagged = values.encode(value)
    except BaseException as e:
        _report(emit, phase, e, job)
        return 1
    emit({"kind": "return", "value": tagged})
    return 0


def _run_assert(job: Job, emit: Emit, namespace: dict[str, Any]) -> int:
    """Program, then setup, then the test code: MBPP's reference harness runs them in this
    order (setup code may build objects of classes the program defines)."""
    phase = "compile"
    try:
        setup = marshal.loads(job.setup_code)
        tests = marshal.loads(job.tests_code)
        program = compile_program(job.program)
        phase = "program"
        exec(program, namespace)
        phase = "setup"
        exec(setup, namespace)
        phase = "test"
        _reset_runtime(namespace)
        exec(tests, namespace)
    except BaseException as e:
        _report(emit, phase, e, job)
        return 1
    # Only reached when every statement of the test code completed.
    emit({"kind": "done"})
    return 0


def _reset_runtime(namespace: dict[str, Any]) -> None:
    """Undo the cheap tampering a program can do before the test code runs: rebound
    builtins (seen by the test code and by the library code it calls), a replaced
    `__builtins__`, its own plainness helpers, trace and profile hooks."""
    sys.settrace(None)
    sys.setprofile(None)
    threading.settrace(None)  # type: ignore[arg-type]
    threading.setprofile(None)  # type: ignore[arg-type]
    _dict_clear(builtins.__dict__)
    _dict_update(builtins.__dict__, _PRISTINE_BUILTINS)
    namespace["__builtins__"] = builtins
    namespace[PLAIN_HELPER] = values.require_plain
    namespace[VETTED_HELPER] = values.require_no_program_types
    namespace[CALLEE_HELPER] = values.vet_callee


def resolve(namespace: dict[str, Any], fn_name: str) -> Callable[..., Any]:
    """LeetCode style `Solution().fn_name` when the program defines it, else a function."""
    solution = namespace.get("Solution")
    if isinstance(solution, type) and hasattr(solution, fn_name):
        return getattr(solution(), fn_name)
    fn = namespace.get(fn_name)
    if not callable(fn):
        raise NameError(f"the program defines no function {fn_name!r} (top-level or a method of class Solution)")
    return fn


def _emitter(nonce: bytes) -> Emit:
    """The only writer of records; processes the program forks (which return through this
    harness too) stay silent, so their exits cannot spoil the main process's record."""
    pid = _getpid()

    def emit(payload: dict[str, Any]) -> None:
        if _getpid() != pid:
            return
        data = memoryview(evidence.frame(nonce, payload))
        while data:
            data = data[_write(RESULT_FD, data) :]

    return emit


def _report(emit: Emit, phase: str, error: BaseException, job: Job, echo: bool = False) -> None:
    """Record an exception (its type decides error vs memory vs failed assertion)."""
    try:
        for filename, source in ((PROGRAM_FILE, job.program), (TESTS_FILE, job.code), (SETUP_FILE, job.setup)):
            _remember(filename, source)
        text = "".join(traceback.format_exception(type(error), error, _without_harness_frames(error.__traceback__)))
    except BaseException:
        text = f"{type(error).__name__} (traceback unavailable)\n"
    if echo:
        try:
            sys.stderr.write(text)
        except BaseException:
            pass
    try:
        emit({"kind": "exception", "phase": phase, "type": type(error).__name__, "traceback": text[-TRACEBACK_CHARS:]})
    except BaseException:
        emit({"kind": "exception", "phase": phase, "type": "MemoryError", "traceback": ""})


def _without_harness_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    while tb is not None and tb.tb_frame.f_code.co_filename in _TRUSTED_FILES:
        tb = tb.tb_next
    return tb


def _exit_status(code: Any) -> int:
    """Exit status the interpreter would report for `sys.exit(code)`."""
    if code is None:
        return 0
    if isinstance(code, int):
        return int(code) & 0xFF
    try:
        print(code, file=sys.stderr)
    except BaseException:
        pass
    return 1


def _shut_down_like_the_interpreter(status: int) -> int:
    """What `Py_FinalizeEx` does after the main module: wait for non-daemon threads
    (solutions often run `main` in a big-stack thread), run atexit handlers, flush the std
    streams, collect garbage, restore the original std streams and destroy the modules (here
    only `__main__`, whose objects are the program's: fast-I/O classes flush in `__del__`),
    and flush again."""
    try:
        main = threading.main_thread()
        for thread in threading.enumerate():
            if thread is not main and not thread.daemon:
                thread.join()
        atexit._run_exitfuncs()
    except BaseException:
        status = status or 1
    status = _flush_std_files(status)
    try:
        gc.collect()
        sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__
        sys.modules.pop("__main__", None)
        gc.collect()
    except BaseException:
        pass
    return _flush_std_files(status)


def _flush_std_files(status: int) -> int:
    """Flush sys.stdout and sys.stderr unless closed; a failed flush makes the status 120."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None and not stream.closed:
                stream.flush()
        except BaseException:
            status = status or 120
    return status


def _new_main(header: dict[str, Any] | None) -> types.ModuleType:
    module = types.ModuleType("__main__")
    if header:
        module.__dict__.update(header)
    module.__dict__.update(__builtins__=builtins, __file__=PROGRAM_FILE)
    return module


def _script_stdio(encoding: str, errors: str) -> tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper]:
    """sys.stdin, sys.stdout and sys.stderr exactly as CPython makes them for a script whose
    standard streams are files (`create_stdio` in pylifecycle.c): buffered binary files on
    fds 0-2 named `<stdin>`..., text wrappers without newline translation, `mode` set,
    stdout block-buffered, stderr line-buffered with backslashreplace. Built after the fork,
    on the test's own files, so `seekable()` and the buffer size are theirs."""
    streams = []
    for fd, mode, name in ((0, "r", "<stdin>"), (1, "w", "<stdout>"), (2, "w", "<stderr>")):
        buffered = io.open(fd, mode + "b", -1, closefd=False)
        buffered.raw.name = name
        text = io.TextIOWrapper(
            buffered,
            encoding,
            "backslashreplace" if fd == 2 else errors,
            "\n",
            line_buffering=fd == 2,
            write_through=False,
        )
        text.mode = mode
        streams.append(text)
    return streams[0], streams[1], streams[2]


def _remember(filename: str, source: str) -> None:
    """Let tracebacks quote the source lines."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
