"""Differential fidelity: every corpus program gets the same verdict from the sandbox as from
plain `python3 solution.py < input` (`bdc_ray.sandbox.plain`), under the same limits and
the same judge, and that verdict is the one named here.

The corpus (tests/sandbox/fidelity/) holds the idioms competitive and benchmark code relies
on: fast-I/O templates, reads of fd 0 as a file, `pow` with a modulus, deep recursion in a
big-stack thread, `exit()` after printing, stderr noise, CRLF input, output near the cap,
buffers flushed at interpreter exit, call-based and assertion tests with the program's own
classes, and programs that must fail (wrong answer, crash, exit status, time, memory).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bdc_ray.problems.types import AssertTest, CallTest, StdioTest, Test
from bdc_ray.sandbox.plain import run_plain
from tests.sandbox.support import LIMITS, WIDE_TIME

CORPUS = Path(__file__).parent / "fidelity"
CAP = LIMITS.output_bytes
STREAMS = """\
r w w
<stdin> <stdout> <stdin>
utf-8 surrogateescape backslashreplace
False True False True
True 0 1 2
__main__ solution.py 1 1000
BufferedReader BufferedWriter None
"""


@dataclass(frozen=True)
class Case:
    program: str
    tests: list[Test]
    verdict: str = "passed"
    needs: str | None = field(default=None)


def stdio(stdin: str, output: str, source: str | None = None) -> list[Test]:
    return [StdioTest(input=stdin, output=output, source=source)]


CASES = {
    "fast_io_template": Case("fast_io_template", stdio("3\n4 1 9\n", "3 14 9")),
    # Text written to sys.stdout waits in the text layer while sys.stdout.buffer writes go ahead.
    "buffer_read_split": Case("buffer_read_split", stdio("3\n1 2 3\n", "6\n2 4 6")),
    "os_read_fstat": Case("os_read_fstat", stdio("5 6\n7\n", "3 18")),
    "pow_with_modulus": Case("pow_with_modulus", stdio("3 200\n", f"{pow(3, 200, 10**9 + 7)} 1 1024")),
    "recursion_in_big_stack_thread": Case("recursion_in_big_stack_thread", stdio("30000\n", "30000")),
    "worker_threads": Case("worker_threads", stdio("", " ".join(str(sum(range(i * 1000))) for i in range(4)))),
    "exit_after_print": Case("exit_after_print", stdio("14\n", "42")),
    "quit_after_print": Case("quit_after_print", stdio("", "first second")),
    "exit_with_status": Case("exit_with_status", stdio("", "partial answer"), "error"),
    "stderr_chatter": Case("stderr_chatter", stdio("2 3\n", "5")),
    "read_until_eof": Case("read_until_eof", stdio("1 2\n3\n4 5 6", "3 21")),
    "crlf_input": Case("crlf_input", stdio("ab\r\n41\r\n", "3 3 '\\r' 42")),
    "iterate_stdin": Case("iterate_stdin", stdio("a\nbc\n", "2 5 True")),
    "stream_attributes": Case("stream_attributes", stdio("", STREAMS)),
    "output_order": Case("output_order", stdio("", "written straight to fd 1 buffered first buffered second")),
    "large_output_below_cap": Case("large_output", stdio(f"{CAP - 100}\n", ("x" * 99 + "\n") * (CAP // 100 - 1))),
    "large_output_above_cap": Case("large_output", stdio(f"{CAP + 100}\n", ""), "output-limit"),
    "main_guard": Case("main_guard", stdio("3\n2 9 4\n", "9 4 2")),
    "atexit_output": Case("atexit_output", stdio("", "0 1 4 9 16")),
    "flush_on_close_at_exit": Case("flush_on_close_at_exit", stdio("", "45")),
    "os_exit_loses_buffer": Case("os_exit_loses_buffer", stdio("", "lost: never flushed"), "failed"),
    "numpy_usage": Case("numpy_usage", stdio("1 2 3 6\n", "12 6 3.0"), needs="numpy"),
    "wrong_answer": Case("wrong_answer", stdio("1\n", "1"), "failed"),
    "crash": Case("crash", stdio("7\n", "1"), "error"),
    "busy_loop": Case("busy_loop", stdio("", ""), "timeout"),
    "memory_hog": Case("memory_hog", stdio(f"{LIMITS.memory_mb + 64}\n", ""), "memory"),
    "memory_within_limit": Case("memory_hog", stdio(f"{LIMITS.memory_mb // 4}\n", f"{LIMITS.memory_mb // 4 * 131072}")),
    "apps_top_level_return": Case("apps_top_level_return", stdio("4\n", "even", source="apps")),
    "top_level_return_elsewhere": Case("apps_top_level_return", stdio("4\n", "even", source="codecontests"), "error"),
    "call_based": Case("call_based", [CallTest(fn_name="modPow", args=[4, 13, 497], expected=[445, 1], source="apps")]),
    "mbpp_pairs": Case(
        "mbpp_pairs",
        [
            AssertTest(code="assert max_chain_length([Pair(5, 24), Pair(15, 25), Pair(27, 40), Pair(50, 60)], 4) == 3"),
            AssertTest(code="assert max_chain_length([Pair(1, 2), Pair(3, 4), Pair(5, 6), Pair(7, 8)], 4) == 4"),
        ],
    ),
    "mbpp_tree_setup": Case(
        "mbpp_tree_setup",
        [AssertTest(code="assert is_balanced(root) == False", setup="root = Node(1)\nroot.left = Node(2)\nroot.left.left = Node(3)")],
    ),
    "mbpp_wrong_answer": Case("mbpp_pairs", [AssertTest(code="assert max_chain_length([Pair(1, 2)], 1) == 2")], "failed"),
    "humaneval_check": Case(
        "humaneval_style",
        [AssertTest(code="def check(candidate):\n    assert candidate([1, -2]) is True\n    assert not candidate([1])\ncheck(below_zero)\n")],
    ),
}


def _time_limits(case: Case) -> dict[str, float]:
    """A short limit where the verdict is the time-out, a wide one elsewhere."""
    return {"time_s": 1.0} if case.verdict == "timeout" else WIDE_TIME


def _program(case: Case) -> str:
    return (CORPUS / f"{case.program}.py").read_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_sandbox_and_plain_python_give_the_same_verdict(sandbox, name):
    case = CASES[name]
    if case.needs and importlib.util.find_spec(case.needs) is None:
        pytest.skip(f"{case.needs} is not installed")
    limits = LIMITS.model_copy(update={"time_s_by_source": {}, **_time_limits(case)})
    program = _program(case)
    boxed = sandbox.run(program, case.tests, limits=limits)
    plain = run_plain(program, case.tests, limits)
    assert [t.status for t in boxed.tests] == [t.status for t in plain.tests], (boxed.first_failure, plain.first_failure)
    assert boxed.status == case.verdict, boxed.first_failure


def test_every_corpus_program_is_used():
    assert {p.stem for p in CORPUS.glob("*.py")} == {c.program for c in CASES.values()}
