"""A warm worker: a lean interpreter that holds the namespaces and forks one child per test.

Started by the pool as `python -I -c ...` with a scrubbed environment, so neither the pool's
memory nor its secrets are inherited. It imports everything a test needs once, enters its
namespaces once, then for each job forks a child that becomes PID 1 of a new PID namespace:
when that child exits, the kernel kills every process it left behind, daemons included.
The worker itself never runs untrusted code and reports only observed facts (exit status,
times, captured output, the raw result channel); verdicts are made in the pool.
"""

from __future__ import annotations

import gc
import json
import os
import random
import select
import shutil
import signal
import threading
import time
from typing import NoReturn

from bdc_ray.sandbox import harness, linux, messages, namespaces, seccomp
from bdc_ray.sandbox.confine import ChildFds, Identity, confine, sandbox_env
from bdc_ray.sandbox.evidence import NONCE_BYTES
from bdc_ray.sandbox.header import header_namespace
from bdc_ray.sandbox.messages import Execution, Job, Ready

STDERR_TAIL_BYTES = 8192
ORPHAN_REAP_S = 1.0
PR_SET_CHILD_SUBREAPER = 36


class Worker:
    """The job loop of a worker process, after its namespaces and imports are in place."""

    def __init__(
        self,
        cmd_fd: int,
        res_fd: int,
        identity: Identity,
        scratch_root: str,
        pid_ns_fd: int | None,
        stage: harness.Stage,
    ):
        self.cmd_fd, self.res_fd = cmd_fd, res_fd
        self.identity = identity
        self.scratch_root = scratch_root
        self.pid_ns_fd = pid_ns_fd
        self.stage = stage
        self.counter = 0

    def serve(self) -> None:
        while True:
            try:
                job = messages.receive(self.cmd_fd)
            except EOFError:
                return
            messages.send(self.res_fd, self.execute(job))

    def execute(self, job: Job) -> Execution:
        self.counter += 1
        scratch = os.path.join(self.scratch_root, f"test-{self.counter}")
        os.mkdir(scratch, 0o700)
        files = [os.memfd_create(name) for name in ("stdin", "stdout", "stderr", "record")]
        key_r, key_w = os.pipe()
        ack_r, ack_w = os.pipe()
        try:
            if os.geteuid() == 0 and self.identity.mode != "userns":
                os.chown(scratch, self.identity.uid, self.identity.gid)
            # Set here rather than in the child, where touching os.environ costs page faults.
            os.environ.update(sandbox_env(scratch))
            _write_all(files[0], job.stdin)
            os.lseek(files[0], 0, os.SEEK_SET)
            os.set_blocking(ack_r, False)
            child_fds = ChildFds(*files, key=key_r, ack=ack_w)
            started = time.monotonic()
            pid = self._fork_child(job, child_fds, scratch)
            nonce = os.urandom(NONCE_BYTES)  # only now: the child must not inherit it in memory
            os.write(key_w, nonce)
            os.close(ack_w)
            ack_w = -1
            timed_out = self._wait(pid, job.wall_s)
            _, status, usage = os.wait4(pid, 0)
            wall = time.monotonic() - started
            if self.identity.mode == "none":
                self._kill_leftovers(pid)
            cpu = usage.ru_utime + usage.ru_stime
            signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            out_size, err_size, rec_size = (os.fstat(f).st_size for f in files[1:])
            setup_error = _read_available(ack_r).decode(errors="replace") or None
            return Execution(
                wall_s=wall,
                cpu_s=cpu,
                exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                signal=signum,
                timed_out=timed_out or (signum == signal.SIGKILL and cpu >= job.cpu_s - 0.05),
                stdout=_pread(files[1], min(out_size, job.output_bytes), 0),
                stdout_overflow=out_size > job.output_bytes,
                stderr_tail=_pread(files[2], STDERR_TAIL_BYTES, max(0, err_size - STDERR_TAIL_BYTES)),
                stderr_overflow=err_size > job.output_bytes,
                record=_pread(files[3], min(rec_size, job.output_bytes), 0),
                record_overflow=rec_size > job.output_bytes,
                nonce=nonce,
                setup_error=setup_error,
            )
        finally:
            for fd in (*files, key_r, key_w, ack_r, ack_w):
                if fd >= 0:
                    os.close(fd)
            _remove_tree(scratch)

    def _fork_child(self, job: Job, fds: ChildFds, scratch: str) -> int:
        if self.pid_ns_fd is not None:
            linux.unshare(linux.CLONE_NEWPID)
        try:
            pid = linux.fork_without_python_handlers()  # safe: a worker never starts threads
            if pid == 0:
                self._become_child(job, fds, scratch)
        finally:
            if self.pid_ns_fd is not None:
                linux.setns(self.pid_ns_fd, linux.CLONE_NEWPID)
        return pid

    def _become_child(self, job: Job, fds: ChildFds, scratch: str) -> NoReturn:
        random.seed()  # the one after-fork handler that matters here: children must not share a stream
        harness.run(job, confine(job, self.identity, fds, scratch), self.stage)

    def _wait(self, pid: int, limit_s: float) -> bool:
        """Wait for the child to exit; kill it at the wall-clock limit. True if it timed out.

        Also watches the command pipe: if the pool goes away mid-test, the child is killed and
        the worker exits instead of finishing work nobody will read.
        """
        pidfd = os.pidfd_open(pid)
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            poller.register(self.cmd_fd, select.POLLIN | select.POLLHUP)
            deadline = time.monotonic() + limit_s
            while True:
                remaining = deadline - time.monotonic()
                ready = dict(poller.poll(max(remaining, 0) * 1000)) if remaining > 0 else {}
                if pidfd in ready:
                    return False
                if self.cmd_fd in ready:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    os._exit(0)
                if remaining <= 0:
                    os.kill(pid, signal.SIGKILL)
                    return True
        finally:
            os.close(pidfd)

    def _kill_leftovers(self, pid: int) -> None:
        """Without a PID namespace: kill the child's process group, and (as root) every
        process of the sandbox uid, by having a helper of that uid kill(-1) them all; then
        reap the orphans, which this worker (a child subreaper) inherited."""
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if os.geteuid() == 0:
            helper = os.fork()
            if helper == 0:
                try:
                    os.setresuid(self.identity.uid, self.identity.uid, self.identity.uid)
                    for _ in range(100):
                        os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    os._exit(0)
                os._exit(1)
            os.waitpid(helper, 0)
        deadline = time.monotonic() + ORPHAN_REAP_S
        while time.monotonic() < deadline:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    time.sleep(0.005)
            except ChildProcessError:
                return


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_available(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


def _pread(fd: int, size: int, offset: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _remove_tree(path: str) -> None:
    """Delete a scratch tree whatever permissions the program left on it."""

    def make_writable_and_retry(function, failed_path, _exc):  # type: ignore[no-untyped-def]
        os.chmod(os.path.dirname(failed_path), 0o700)
        if os.path.isdir(failed_path) and not os.path.islink(failed_path):
            os.chmod(failed_path, 0o700)
        function(failed_path)

    shutil.rmtree(path, onerror=make_writable_and_retry)


def _filter_syscalls() -> str:
    """Install the seccomp filter on this worker (children inherit it); say what happened."""
    if not seccomp.supported():
        return "no seccomp filter (only built for x86_64)"
    try:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
        seccomp.install(seccomp.filter_program())
    except OSError as e:
        return f"no seccomp filter (the kernel refused it: {e})"
    return "seccomp filter, EPERM for: " + ", ".join(seccomp.denied_calls())


def main(config_json: str) -> None:
    """Entry point of a worker process; see the pool's worker handle for the config."""
    config = json.loads(config_json)
    cmd_fd, res_fd = config["cmd_fd"], config["res_fd"]
    mode: namespaces.Mode = config["mode"]
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last_cap = int(f.read())
    os.environ.clear()  # already scrubbed by the pool; from here on, exactly what programs see
    if threading.active_count() != 1:
        raise RuntimeError("a worker must stay single-threaded (it forks without CPython's handlers)")
    try:
        stage = harness.Stage(header_namespace())  # all imports happen before /root etc. vanish
        if mode == "none":
            confinement = namespaces.Confinement("none", ())
            scratch_root, pid_ns_fd, extra = config["scratch_root"], None, 0
            linux.prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans come back to us, not to the host's init
        else:
            confinement, pid_ns_fd = namespaces.enter(mode, config["uid"], config["gid"], config["extra_hidden"])
            scratch_root, extra = namespaces.SCRATCH_ROOT, (2 if mode == "userns" else 0)
        identity = Identity(mode, config["uid"], config["gid"], last_cap, extra)
        worker = Worker(cmd_fd, res_fd, identity, scratch_root, pid_ns_fd, stage)
        filtering = _filter_syscalls()
    except Exception as e:
        messages.send(res_fd, Ready((), error=f"{type(e).__name__}: {e}"))
        return
    messages.send(res_fd, Ready((*confinement.mechanisms, filtering)))
    gc.freeze()  # children then never walk (and copy) the worker's long-lived objects
    worker.serve()
