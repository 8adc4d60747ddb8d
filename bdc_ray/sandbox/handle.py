"""The pool's end of one worker process: start it, give it jobs, replace it when it dies."""

from __future__ import annotations

import json
import os
import subprocess

from bdc_ray.sandbox import launch, messages
from bdc_ray.sandbox.messages import Execution, Job, Ready
from bdc_ray.sandbox.namespaces import Mode
from bdc_ray.sandbox.uids import UidLease, kill_all_processes_of

START_TIMEOUT_S = 60.0
RESULT_GRACE_S = 10.0
"""Beyond a test's own limit, how long a worker may take to report (collecting output,
deleting scratch) before it is presumed hung and replaced."""


class WorkerLost(RuntimeError):
    """The worker died or stopped answering; the current test cannot be judged."""


class WorkerHandle:
    """One worker process. Not thread-safe: the pool hands each handle to one run at a time."""

    def __init__(self, mode: Mode, lease: UidLease | None, scratch_root: str, hidden: list[str]):
        self.mode, self.lease, self.scratch_root, self.hidden = mode, lease, scratch_root, hidden
        self.process: subprocess.Popen[bytes] | None = None
        self.mechanisms: tuple[str, ...] = ()
        self._cmd_w = self._res_r = -1

    @property
    def uid(self) -> int:
        return self.lease.uid if self.lease else os.getuid()

    def start(self) -> None:
        """Spawn the worker; `wait_ready` completes the start."""
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        config = {
            "cmd_fd": cmd_r,
            "res_fd": res_w,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.lease.gid if self.lease else os.getgid(),
            "extra_hidden": self.hidden,
            "scratch_root": self.scratch_root,
        }
        try:
            self.process = subprocess.Popen(
                launch.command("bdc_ray.sandbox.worker", "main", json.dumps(config)),
                pass_fds=(cmd_r, res_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=launch.clean_env(),
                start_new_session=True,
            )
        finally:
            os.close(cmd_r)
            os.close(res_w)

    def wait_ready(self) -> None:
        try:
            ready: Ready = messages.receive(self._res_r, START_TIMEOUT_S)
        except (EOFError, TimeoutError) as e:
            self.stop()
            raise WorkerLost(f"sandbox worker failed to start: {e}") from e
        if ready.error is not None:
            self.stop()
            raise WorkerLost(f"sandbox worker failed to start: {ready.error}")
        self.mechanisms = ready.mechanisms

    def execute(self, job: Job) -> Execution:
        """Run one job. A worker found dead is restarted first; one that dies during the job
        is restarted and the job retried once (workers never run untrusted code, so their
        death is not the program's doing)."""
        for attempt in (1, 2):
            if self.process is None or self.process.poll() is not None:
                self.stop()
                self.start()
                self.wait_ready()
            try:
                messages.send(self._cmd_w, job)
                return messages.receive(self._res_r, job.wall_s + RESULT_GRACE_S)
            except (OSError, EOFError, TimeoutError) as e:
                code = self.process.poll() if self.process else None
                self.stop()
                if attempt == 2:
                    why = "stopped answering" if isinstance(e, TimeoutError) else f"died (exit status {code})"
                    raise WorkerLost(f"sandbox worker {why} twice on this test") from e
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """End the worker: closing its command pipe makes it exit; kill it if it does not."""
        for fd in (self._cmd_w, self._res_r):
            if fd >= 0:
                os.close(fd)
        self._cmd_w = self._res_r = -1
        if self.process is not None:
            try:
                self.process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self.lease is not None:
            kill_all_processes_of(self.lease.uid)
