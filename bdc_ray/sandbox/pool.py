"""The sandbox: a warm pool of workers, and the trusted side of every run."""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from pydantic import TypeAdapter

from bdc_ray.problems.types import Test
from bdc_ray.sandbox import isolation, launch
from bdc_ray.sandbox.handle import WorkerHandle
from bdc_ray.sandbox.isolation import IsolationInfo
from bdc_ray.sandbox.limits import SandboxLimits
from bdc_ray.sandbox.results import RunResult
from bdc_ray.sandbox.runs import run_tests
from bdc_ray.sandbox.uids import UidLease

_TESTS = TypeAdapter(list[Test])


class Sandbox:
    """Runs untrusted programs against tests on a pool of pre-started workers.

    Thread-safe: any number of threads may call `run` at once; each run holds one worker for
    its duration, so at most `workers` programs execute in parallel. Use it as a context
    manager (or call `close`) so workers, uids and scratch space are released.
    """

    def __init__(self, workers: int = 2, limits: SandboxLimits | None = None):
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.limits = limits or SandboxLimits()
        detected = isolation.resolve(self.limits.isolation)
        self._closed = False
        self._close_lock = threading.Lock()
        self._pooled = 0
        self._leases = [UidLease() for _ in range(workers)] if os.geteuid() == 0 else []
        # Namespaced workers keep scratch on their private tmpfs; only the fallback needs a host dir.
        self._scratch_root = tempfile.mkdtemp(prefix="bdc-sandbox-") if detected.mode == "none" else ""
        if self._scratch_root:
            os.chmod(self._scratch_root, 0o711)
        hidden = [launch.project_root()]
        self._handles = [
            WorkerHandle(detected.mode, self._leases[i] if self._leases else None, self._scratch_root, hidden)
            for i in range(workers)
        ]
        self._idle: queue.Queue[WorkerHandle] = queue.Queue()
        try:
            for handle in self._handles:
                handle.start()
            for handle in self._handles:
                handle.wait_ready()
                self._idle.put(handle)
                self._pooled += 1
        except BaseException:
            self.close()
            raise
        self.isolation = IsolationInfo(detected.mode, self._mechanisms(detected), detected.unavailable)

    @property
    def sandbox_uids(self) -> list[int]:
        """Host uids the untrusted code of this pool runs as."""
        return sorted({h.uid for h in self._handles})

    @property
    def worker_pids(self) -> list[int]:
        """Host pids of the running worker processes (for monitoring)."""
        return [h.process.pid for h in self._handles if h.process is not None]

    def run(
        self,
        program: str,
        tests: Sequence[Test],
        *,
        stop_on_first_failure: bool = False,
        limits: SandboxLimits | None = None,
    ) -> RunResult:
        """Run `program` against `tests` (in order) and judge every test."""
        limits = self._limits_for(limits)
        checked = _TESTS.validate_python(list(tests))
        if not checked:
            return RunResult.refused("no tests: a program cannot pass an empty test list")
        handle = self._acquire()
        try:
            return run_tests(program, checked, limits, handle.execute, stop_on_first_failure)
        finally:
            self._idle.put(handle)

    def run_many(
        self,
        items: Iterable[tuple[str, Sequence[Test]]],
        *,
        stop_on_first_failure: bool = False,
        limits: SandboxLimits | None = None,
        on_result: Callable[[RunResult], None] | None = None,
    ) -> list[RunResult]:
        """`run` for each (program, tests) pair, in parallel across the pool, in order;
        `on_result` is called (from a pool thread) as each run ends, e.g. to move a progress bar."""

        def one(item: tuple[str, Sequence[Test]]) -> RunResult:
            result = self.run(item[0], item[1], stop_on_first_failure=stop_on_first_failure, limits=limits)
            if on_result is not None:
                on_result(result)
            return result

        with ThreadPoolExecutor(max_workers=len(self._handles), thread_name_prefix="sandbox-run") as threads:
            return list(threads.map(one, list(items)))

    def close(self) -> None:
        """Stop every worker (waiting for runs in progress), release uids and scratch space."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        idle = [self._idle.get() for _ in range(self._pooled)]  # each returns once its run is over
        for handle in self._handles:
            handle.stop()
        for lease in self._leases:
            lease.release()
        if self._scratch_root:
            shutil.rmtree(self._scratch_root, ignore_errors=True)
        for handle in idle:  # wake runs still waiting for a worker: they see the pool closed
            self._idle.put(handle)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _acquire(self) -> WorkerHandle:
        if self._closed:
            raise RuntimeError("the sandbox is closed")
        handle = self._idle.get()
        if self._closed:
            self._idle.put(handle)
            raise RuntimeError("the sandbox is closed")
        return handle

    def _limits_for(self, limits: SandboxLimits | None) -> SandboxLimits:
        if limits is None:
            return self.limits
        if limits.isolation == "required" and self.isolation.mode == "none":
            raise isolation.SandboxIsolationError("this call requires isolation but the pool runs without it")
        return limits

    def _mechanisms(self, detected: IsolationInfo) -> tuple[str, ...]:
        common = [
            "fresh worker interpreters (python -I, scrubbed environment), one forked child per test",
            "rlimits per test: address space, CPU seconds, file size (output cap), open files, no core dumps",
            "environment reduced to PATH, LANG, HOME and TMPDIR; fresh scratch directory per test as cwd/HOME/TMPDIR",
            "no_new_privs; parent-death SIGKILL; verdicts decided in the pool from nonce-framed records",
        ]
        if self._leases:
            common.append(
                f"distinct unprivileged uid per worker ({', '.join(map(str, self.sandbox_uids))}), RLIMIT_NPROC"
            )
        if detected.mode == "none":
            common.append("leftover processes killed by process group" + (" and uid sweep" if self._leases else ""))
        return (*common, *self._handles[0].mechanisms)
