"""Time, memory, process and output limits hold against programs that try to exceed them."""

from __future__ import annotations

import time

from bdc_ray.problems.types import StdioTest
from tests.sandbox.support import LIMITS, WIDE_TIME, run_call, run_stdio


def test_infinite_loop_times_out_on_cpu(sandbox):
    started = time.monotonic()
    result = run_stdio(sandbox, "while True:\n    pass\n", expected="1")
    assert result.status == "timeout"
    assert time.monotonic() - started < LIMITS.time_s + 2


def test_sleeping_program_times_out_on_wall_clock(sandbox):
    result = run_stdio(sandbox, "import time\ntime.sleep(30)\n", expected="1")
    assert result.status == "timeout" and result.tests[0].cpu_s < 0.5


def test_busy_threads_and_children_hit_the_time_limit(sandbox):
    program = """
        import os, threading
        def spin():
            while True:
                pass
        for _ in range(4):
            threading.Thread(target=spin, daemon=True).start()
        if os.fork() == 0:
            spin()
        spin()
        """
    assert run_stdio(sandbox, program, expected="1").status == "timeout"


def test_program_time_budget_covers_all_tests_of_a_run(sandbox):
    limits = LIMITS.model_copy(update={"time_s": 1.0, "program_time_s": 1.9})
    tests = [StdioTest(input="", output="1")] * 4
    started = time.monotonic()
    result = sandbox.run("import time\ntime.sleep(0.7)\nprint(1)", tests, limits=limits)
    assert time.monotonic() - started < 3.5
    assert [t.status for t in result.tests][:2] == ["passed", "passed"]
    assert result.status == "timeout" and result.tests[-1].status == "timeout"


def test_memory_hog_hits_the_memory_limit(sandbox):
    limits = LIMITS.model_copy(update=WIDE_TIME)
    assert run_stdio(sandbox, "x = bytearray(10**9)\nprint(1)", expected="1", limits=limits).status == "memory"
    grower = """
        chunks = []
        while True:
            chunks.append(bytearray(16 * 1024 * 1024))
        """
    assert run_stdio(sandbox, grower, expected="1", limits=limits).status == "memory"


def test_fork_bomb_is_bounded_and_the_sandbox_survives(sandbox):
    program = """
        import os
        n = 0
        while True:
            try:
                if os.fork() == 0:
                    continue
                n += 1
            except OSError:
                break
        print("forked", n)
        """
    result = run_stdio(sandbox, program, expected="x")
    assert result.status in {"failed", "timeout"}
    if result.status == "failed":  # each process of the bomb that got to print printed one line
        assert result.first_failure.actual.count("forked") <= LIMITS.max_processes
    assert run_stdio(sandbox, "print(7)", expected="7").status == "passed"


def test_thread_bomb_is_bounded(sandbox):
    program = """
        import threading, time
        started = 0
        try:
            for _ in range(1000):
                threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
                started += 1
        except RuntimeError:
            pass
        print(started)
        """
    result = run_stdio(sandbox, program, expected="x")
    assert result.status == "failed" and int(result.first_failure.actual) < LIMITS.max_processes


def test_huge_stdout_is_an_output_limit(sandbox):
    result = run_stdio(sandbox, "while True:\n    print('x' * 1000)\n", expected="x")
    assert result.status == "output-limit" and "stdout" in result.first_failure.detail


def test_huge_stderr_is_an_output_limit(sandbox):
    program = "import sys\nfor _ in range(10**6):\n    sys.stderr.write('e' * 1000)\n"
    assert run_stdio(sandbox, program, expected="").status == "output-limit"


def test_huge_returned_value_is_an_output_limit(sandbox):
    assert run_call(sandbox, "def f():\n    return 'x' * 10**6\n", "f", [], "x").status == "output-limit"


def test_files_written_in_scratch_are_capped_too(sandbox):
    program = """
        try:
            with open("big", "wb") as f:
                f.write(b"x" * 10**6)
            print("wrote")
        except OSError as e:
            print("refused", e.errno)
        """
    assert run_stdio(sandbox, program, expected="refused 27").status == "passed"
