"""What the pool and a worker say to each other, and how it travels.

Both ends are trusted (the worker never runs untrusted code itself, only forks children that
drop privileges and lose these pipes), so messages are pickles over inherited pipes. A job
carries only what the untrusted child may see: never an expected output.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

_LENGTH = struct.Struct("!Q")


@dataclass(frozen=True)
class Job:
    """One test to execute: the program, the test's inputs, and the limits for this test."""

    kind: Literal["stdio", "call", "assert"]
    program: str
    wall_s: float
    cpu_s: int
    memory_bytes: int
    max_processes: int
    output_bytes: int
    stdin: bytes = b""
    wrap: bool = False
    """Stdio only: a program that compiles only inside a function runs wrapped in one (APPS)."""
    fn_name: str = ""
    args: list[Any] = field(default_factory=list)
    setup: str = ""
    code: str = ""
    setup_code: bytes = b""
    tests_code: bytes = b""
    """Marshalled code objects of `setup` and `code`, compiled by the pool."""


@dataclass(frozen=True)
class Execution:
    """The raw facts a worker observed; the pool's judge turns them into a verdict."""

    wall_s: float
    cpu_s: float
    exit_code: int | None
    signal: int | None
    timed_out: bool
    stdout: bytes
    stdout_overflow: bool
    stderr_tail: bytes
    stderr_overflow: bool
    record: bytes
    record_overflow: bool
    nonce: bytes
    setup_error: str | None = None


@dataclass(frozen=True)
class Ready:
    """A worker's first message: the isolation it achieved, or why it could not start."""

    mechanisms: tuple[str, ...]
    error: str | None = None


def send(fd: int, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def receive(fd: int, timeout_s: float | None = None) -> Any:
    """The next message; EOFError if the other end is gone, TimeoutError if none in time."""
    if timeout_s is not None and not _readable(fd, timeout_s):
        raise TimeoutError(f"no message within {timeout_s:.1f} s")
    (length,) = _LENGTH.unpack(_read_exactly(fd, _LENGTH.size))
    return pickle.loads(_read_exactly(fd, length))


def _readable(fd: int, timeout_s: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(timeout_s, 0.0) * 1000))


def _read_exactly(fd: int, n: int) -> bytes:
    chunks, remaining = [], n
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("pipe closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
