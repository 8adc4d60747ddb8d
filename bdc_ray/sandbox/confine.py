"""Confine a freshly forked child, while it is still trusted code, before the program runs.

Order matters: limits are set while the child may still raise hard limits, privileges go
before the parent-death signal (a uid change would clear it), and the nonce is read last, so
that the worker has had the most time to write it, just before the pipe that carried it is
closed.
"""

from __future__ import annotations

import fcntl
import os
import resource
import signal
from dataclasses import dataclass

from bdc_ray.sandbox import evidence, linux
from bdc_ray.sandbox.messages import Job
from bdc_ray.sandbox.namespaces import Mode

OPEN_FILES = 256
_ACK_FD = 100


@dataclass(frozen=True)
class Identity:
    """Who the untrusted code runs as, and how that is achieved in this worker's mode."""

    mode: Mode
    uid: int
    gid: int
    last_cap: int
    extra_processes: int
    """Tasks of the same uid that are not the program's (a user-namespace worker and its
    keeper count against the same RLIMIT_NPROC)."""


@dataclass(frozen=True)
class ChildFds:
    stdin: int
    stdout: int
    stderr: int
    record: int
    key: int
    ack: int


def sandbox_env(scratch: str) -> dict[str, str]:
    """The whole environment the program sees: nothing inherited, nothing secret."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": scratch, "TMPDIR": scratch}


def confine(job: Job, identity: Identity, fds: ChildFds, scratch: str) -> bytes:
    """Turn this forked child into the sandboxed process and return the test's nonce.

    Afterwards fds 0-2 are the test's stdin/stdout/stderr files, fd 3 the result channel, and
    nothing else is open. On any failure the reason goes to the worker on the
    acknowledgement pipe (which the program never holds) and the child exits.
    """
    ack = fcntl.fcntl(fds.ack, fcntl.F_DUPFD, _ACK_FD)
    try:
        return _confine(job, identity, fds, scratch, ack, fcntl.fcntl(fds.key, fcntl.F_DUPFD, ack + 1))
    except BaseException as e:
        try:
            os.write(ack, f"sandbox setup failed: {type(e).__name__}: {e}".encode())
        finally:
            os._exit(121)


def _confine(job: Job, identity: Identity, fds: ChildFds, scratch: str, ack: int, key: int) -> bytes:
    os.setsid()
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, key + 1) for fd in (fds.stdin, fds.stdout, fds.stderr, fds.record)]
    for target, fd in enumerate(high):
        os.dup2(fd, target)
    os.closerange(4, ack)  # everything but 0-3, ack and key
    os.closerange(ack + 1, key)
    os.closerange(key + 1, 1 << 20)
    _limit(resource.RLIMIT_AS, job.memory_bytes)
    _limit(resource.RLIMIT_CPU, job.cpu_s)
    _limit(resource.RLIMIT_FSIZE, job.output_bytes + 1)
    _limit(resource.RLIMIT_NOFILE, OPEN_FILES)
    _limit(resource.RLIMIT_CORE, 0)
    if identity.mode != "none" or os.geteuid() == 0:
        _limit(resource.RLIMIT_NPROC, job.max_processes + identity.extra_processes)
    os.chdir(scratch)
    if identity.mode == "userns":
        linux.drop_all_capabilities(identity.last_cap)
    elif os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(identity.gid, identity.gid, identity.gid)
        os.setresuid(identity.uid, identity.uid, identity.uid)
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    nonce = _read_nonce(key)
    os.close(key)
    os.close(ack)  # from here on, untrusted code may run
    return nonce


def _limit(which: int, value: int) -> None:
    resource.setrlimit(which, (value, value))


def _read_nonce(fd: int) -> bytes:
    nonce = b""
    while len(nonce) < evidence.NONCE_BYTES:
        chunk = os.read(fd, evidence.NONCE_BYTES - len(nonce))
        if not chunk:
            raise EOFError("the worker closed the nonce pipe early")
        nonce += chunk
    return nonce
