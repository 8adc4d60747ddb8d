"""Nothing a program starts outlives its run; the pool survives hostile programs and threads."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from bdc_ray.problems.types import StdioTest
from bdc_ray.sandbox import Sandbox
from tests.sandbox.support import LIMITS, descendants_of, processes_of, run_stdio

DAEMON = """
    import os, sys, time
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(w, os.readlink("/proc/self").encode())
            while True:
                with open("heartbeat", "w") as f:
                    f.write(str(time.time()))
                time.sleep(0.05)
        os._exit(0)
    print(os.read(r, 64).decode())
    """


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" in f.read()
    except FileNotFoundError:
        return True


def test_double_forked_daemon_dies_with_the_run(sandbox):
    if sandbox.isolation.mode == "userns":
        pytest.skip("the daemon reports its host pid through /proc, hidden in a user namespace")
    result = run_stdio(sandbox, DAEMON, expected="x")
    daemon = int(result.first_failure.actual)  # the daemon did start, and this is its host pid
    assert _gone(daemon)
    assert processes_of(sandbox.sandbox_uids) == []


def test_daemon_dies_without_namespaces_too():
    with Sandbox(workers=1, limits=LIMITS.model_copy(update={"isolation": "off"})) as sb:
        assert sb.isolation.mode == "none"
        result = run_stdio(sb, DAEMON, expected="x")
        daemon = int(result.first_failure.actual)
        assert _gone(daemon)
        assert processes_of(sb.sandbox_uids) == []


def test_no_processes_or_scratch_left_after_close():
    before = set(descendants_of(os.getpid()))
    with Sandbox(workers=2, limits=LIMITS.model_copy(update={"isolation": "off"})) as sb:
        uids = sb.sandbox_uids
        scratch = sb._scratch_root
        run_stdio(sb, "import time\ntime.sleep(5)", expected="", limits=LIMITS.model_copy(update={"time_s": 0.3}))
        assert os.listdir(scratch) == []  # per-test scratch already deleted
    assert not os.path.exists(scratch)
    assert processes_of(uids) == []
    deadline = time.monotonic() + 5
    while set(descendants_of(os.getpid())) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(descendants_of(os.getpid())) - before == set()


def test_namespaced_pool_leaves_nothing_after_close():
    before = set(descendants_of(os.getpid()))
    with Sandbox(workers=2, limits=LIMITS) as sb:
        uids = sb.sandbox_uids
        run_stdio(sb, DAEMON, expected="x")
    assert processes_of(uids) == []
    assert set(descendants_of(os.getpid())) - before == set()


def test_killing_the_parent_does_not_hurt_the_pool(sandbox):
    program = """
        import os, signal
        for target in (os.getppid(), 0, -1):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError:
                pass
        print(1)
        """
    result = run_stdio(sandbox, program, expected="1")
    assert result.status != "passed" or result.first_failure is None
    assert run_stdio(sandbox, "print(5)", expected="5").status == "passed"


def test_a_dead_worker_is_replaced_transparently():
    with Sandbox(workers=1, limits=LIMITS) as sb:
        handle = sb._handles[0]
        os.kill(handle.process.pid, signal.SIGKILL)
        handle.process.wait()
        assert run_stdio(sb, "print(1)", expected="1").status == "passed"


def test_worker_killed_mid_test_is_replaced_and_the_test_retried():
    with Sandbox(workers=1, limits=LIMITS) as sb:
        handle = sb._handles[0]
        victim = handle.process.pid
        killer = threading.Timer(0.3, lambda: os.kill(victim, signal.SIGKILL))
        killer.start()
        result = run_stdio(sb, "import time\ntime.sleep(1)\nprint(1)", expected="1")
        assert result.status == "passed" and handle.process.pid != victim
        assert processes_of(sb.sandbox_uids) == []


def test_many_threads_can_run_concurrently(sandbox):
    results: dict[int, str] = {}

    def one(i: int) -> None:
        results[i] = sandbox.run(f"print({i} * 2)", [StdioTest(input="", output=str(i * 2))]).status

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: "passed" for i in range(12)}


def test_a_closed_sandbox_refuses_runs_even_those_waiting_for_a_worker():
    sb = Sandbox(workers=1, limits=LIMITS)
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            outcomes.append(run_stdio(sb, "import time\ntime.sleep(0.5)\nprint(1)", expected="1").status)
        except RuntimeError as e:
            outcomes.append(str(e))

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while sb._idle.qsize() and time.monotonic() < deadline:  # until one run holds the worker
        time.sleep(0.01)
    sb.close()
    sb.close()
    for t in threads:
        t.join(timeout=5)
    assert sorted(outcomes) == ["passed", "the sandbox is closed"]
    with pytest.raises(RuntimeError, match="closed"):
        sb.run("print(1)", [StdioTest(input="", output="1")])
