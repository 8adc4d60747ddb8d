"""Correct programs must pass: the sandbox's hardening may not cost legitimate solutions."""

from __future__ import annotations

import json

from bdc_ray.problems.types import CallTest, StdioTest
from bdc_ray.sandbox import RunResult, SandboxLimits
from tests.sandbox.support import LIMITS, run_assert, run_call, run_stdio, src


def test_correct_stdio_program_passes_every_test(sandbox):
    program = src(
        """
        n = int(input())
        print(sum(map(int, input().split())) * n)
        """
    )
    tests = [StdioTest(input="2\n1 2 3\n", output="12\n"), StdioTest(input="1\n5\n", output="5")]
    result = sandbox.run(program, tests)
    assert result.status == "passed", result.first_failure
    assert (result.passed, result.total, result.pass_rate, result.first_failure) == (2, 2, 1.0, None)


def test_stdio_comparison_ignores_whitespace_layout(sandbox):
    result = run_stdio(sandbox, "print('1  2\\n3 ')", expected="1 2 3\n\n")
    assert result.status == "passed"


def test_float_tolerance_accepts_close_floats_and_rejects_far_ones(sandbox):
    assert run_stdio(sandbox, "print(1/3)", expected="0.333333").status == "passed"
    assert run_stdio(sandbox, "print(0.3334)", expected="0.333333").status == "failed"


def test_integers_compare_exactly_even_when_huge(sandbox):
    big = 10**30
    assert run_stdio(sandbox, f"print({big + 1})", expected=str(big)).status == "failed"
    assert run_stdio(sandbox, f"print({big})", expected=str(big)).status == "passed"


def test_stdin_is_a_file_so_fstat_size_reads_work(sandbox):
    program = """
        import os
        data = os.read(0, os.fstat(0).st_size).split()
        print(sum(map(int, data)))
        """
    assert run_stdio(sandbox, program, stdin="1 2 3 4\n", expected="10").status == "passed"


def test_apps_top_level_return_and_nonlocal_run_wrapped(sandbox):
    with_return = """
        n = int(input())
        if n > 0:
            print("positive")
            return
        print("other")
        """
    assert run_stdio(sandbox, with_return, stdin="3\n", expected="positive", source="apps").status == "passed"
    with_nonlocal = """
        from math import *
        total = 0
        def add(x):
            nonlocal total
            total += x
        for v in map(int, input().split()):
            add(v)
        print(total, floor(2.5))
        """
    assert run_stdio(sandbox, with_nonlocal, stdin="1 2 3", expected="6 2", source="apps").status == "passed"
    # To python3, and so to every other benchmark, a top-level return is a syntax error.
    for source in (None, "codecontests"):
        plain = run_stdio(sandbox, with_return, stdin="3\n", expected="positive", source=source)
        assert plain.status == "error" and "SyntaxError" in plain.first_failure.error


def test_import_header_is_for_call_based_solutions_only(sandbox):
    call = "def f(xs):\n    return [list(accumulate(xs)), gcd(12, 18), List.__name__, pow(3, 4, 5)]\n"
    assert run_call(sandbox, call, "f", [[1, 2]], [[1, 3], 6, "List", 1]).status == "passed"
    # A stdin program sees what `python3 prog.py` gives it: builtins only, whatever its source.
    for source in (None, "apps", "codecontests"):
        assert run_stdio(sandbox, "print(pow(3, 4, 5))", expected="1", source=source).status == "passed"
        missing = run_stdio(sandbox, "print(gcd(12, 18))", expected="6", source=source)
        assert missing.status == "error" and "NameError" in missing.first_failure.error


def test_solution_run_in_a_big_stack_thread_passes(sandbox):
    program = """
        import sys, threading
        def main():
            sys.setrecursionlimit(100000)
            def depth(n):
                return 0 if n == 0 else 1 + depth(n - 1)
            print(depth(20000))
        threading.stack_size(64 * 1024 * 1024)
        threading.Thread(target=main).start()
        """
    result = run_stdio(sandbox, program, expected="20000")
    assert result.status == "passed", result.first_failure


def test_each_test_gets_its_own_random_stream(sandbox):
    tests = [StdioTest(input="", output="")] * 3
    result = sandbox.run("import random\nprint(random.getrandbits(64))", tests)
    assert len({t.actual for t in result.tests}) == 3


def test_slow_program_within_limit_passes(sandbox):
    result = run_stdio(sandbox, "import time\ntime.sleep(0.6)\nprint('done')", expected="done")
    assert result.status == "passed"
    assert result.tests[0].time_s >= 0.6


def test_noisy_stderr_within_limits_does_not_matter(sandbox):
    program = """
        import sys
        for i in range(2000):
            print("debug line", i, file=sys.stderr)
        print(42)
        """
    assert run_stdio(sandbox, program, expected="42").status == "passed"


def test_correct_call_based_function_passes(sandbox):
    program = "def add(a, b):\n    return a + b\n"
    tests = [
        CallTest(fn_name="add", args=[1, 2], expected=3),
        CallTest(fn_name="add", args=[[1], [2]], expected=[1, 2]),
    ]
    assert sandbox.run(program, tests).status == "passed"


def test_leetcode_solution_method_passes(sandbox):
    program = """
        class Solution:
            def twoSum(self, nums: List[int], target: int) -> List[int]:
                seen = {}
                for i, x in enumerate(nums):
                    if target - x in seen:
                        return [seen[target - x], i]
                    seen[x] = i
        """
    assert run_call(sandbox, program, "twoSum", [[2, 7, 11, 15], 9], [0, 1]).status == "passed"


def test_apps_call_semantics_tuples_and_one_element_wrapping(sandbox):
    program = "def f(n):\n    return (n, [n, n])\n"
    assert run_call(sandbox, program, "f", [1], [1, [1, 1]]).status == "passed"  # tuple vs JSON list
    assert run_call(sandbox, program, "f", [1], [[1, [1, 1]]]).status == "passed"  # expected wrapped
    assert run_call(sandbox, program, "f", [1], [[2, [1, 1]]]).status == "failed"


def test_call_results_compare_floats_with_tolerance_and_dict_keys_as_json(sandbox):
    assert run_call(sandbox, "def f():\n    return 0.1 + 0.2\n", "f", [], 0.3).status == "passed"
    assert run_call(sandbox, "def f():\n    return {1: 'a'}\n", "f", [], {"1": "a"}).status == "passed"


def test_correct_assert_code_passes(sandbox):
    program = "def incr_list(l: list):\n    return [x + 1 for x in l]\n"
    code = """
        def check(candidate):
            assert candidate([1, 2]) == [2, 3]
            assert candidate([]) == []
            assert abs(candidate([0.5])[0] - 1.5) < 1e-9
            assert candidate([1]) != [1]
            assert not candidate([])
            assert isinstance(candidate([1]), list)
        check(incr_list)
        """
    result = run_assert(sandbox, program, code)
    assert result.status == "passed", result.first_failure


def test_assert_setup_runs_after_the_program_and_numeric_types_mix(sandbox):
    program, checks = "def f():\n    return math.pi\n", "assert f() > 3\nassert 1 == 1.0 == True"
    result = run_assert(sandbox, program, checks, setup="import math")
    assert result.status == "passed", result.first_failure
    # MBPP's harness order: setup code may build objects of a class the program defines.
    program = """
        class Node:
            def __init__(self, value, left=None, right=None):
                self.value, self.left, self.right = value, left, right
        def height(node):
            return 0 if node is None else 1 + max(height(node.left), height(node.right))
        """
    setup = "root = Node(1, Node(2, Node(3)))\nleaf = Node(4)"
    result = run_assert(sandbox, program, "assert height(root) == 3\nassert height(leaf) == 1", setup=setup)
    assert result.status == "passed", result.first_failure


def test_mbpp_function_named_like_a_builtin_still_works(sandbox):
    program = "def sum(a, b):\n    return a + b\n"
    assert run_assert(sandbox, program, "assert sum(10, 15) == 25").status == "passed"


def test_different_answer_is_distinguished_from_crash(sandbox):
    wrong = run_stdio(sandbox, "print(2)", expected="3")
    crash = run_stdio(sandbox, "print(1 // 0)", expected="3")
    assert wrong.status == "failed" and wrong.first_failure.detail.startswith("different answer")
    assert (wrong.first_failure.expected, wrong.first_failure.actual) == ("3", "2\n")
    assert crash.status == "error" and "ZeroDivisionError" in crash.first_failure.error
    assert run_call(sandbox, "def f():\n    return 2\n", "f", [], 3).status == "failed"
    assert run_call(sandbox, "def f():\n    raise ValueError('x')\n", "f", [], 3).status == "error"
    assert run_assert(sandbox, "def f():\n    return 2\n", "assert f() == 3").status == "failed"
    assert run_assert(sandbox, "def f():\n    return g()\n", "assert f() == 3").status == "error"


def test_syntax_errors_and_missing_functions_are_errors(sandbox):
    broken = run_stdio(sandbox, "print(", expected="")
    assert broken.status == "error"
    # the traceback python3 prints: the program's file only, no frame of the sandbox's own
    assert broken.first_failure.error.startswith('  File "solution.py", line 1') and "bdc_ray" not in broken.first_failure.error
    missing = run_call(sandbox, "def g():\n    return 1\n", "f", [], 1)
    assert missing.status == "error" and "no function 'f'" in missing.first_failure.detail


def test_empty_test_list_is_an_error_never_a_pass(sandbox):
    result = sandbox.run("print(1)", [])
    assert result.status == "error" and result.error and result.pass_rate == 0.0


def test_stop_on_first_failure_and_overall_status_is_first_failure(sandbox):
    tests = [StdioTest(input="", output="1"), StdioTest(input="", output="2"), StdioTest(input="", output="1")]
    everything = sandbox.run("print(1)", tests)
    assert (everything.status, everything.passed, len(everything.tests)) == ("failed", 2, 3)
    assert everything.first_failure.index == 1
    stopped = sandbox.run("print(1)", tests, stop_on_first_failure=True)
    assert (stopped.status, stopped.passed, stopped.total, len(stopped.tests)) == ("failed", 1, 3, 2)


def test_run_many_keeps_order_and_results_serialise_to_json(sandbox):
    items = [(f"print({i})", [StdioTest(input="", output=str(i % 3))]) for i in range(6)]
    ended: list[RunResult] = []
    results = sandbox.run_many(items, on_result=ended.append)
    assert [r.status for r in results] == ["passed" if i < 3 else "failed" for i in range(6)]
    assert sorted(map(id, ended)) == sorted(map(id, results))  # each run reported once, as it ended
    dumped = json.loads(results[4].model_dump_json())
    assert dumped["first_failure"]["detail"].startswith("different answer")
    assert RunResult.model_validate_json(results[4].model_dump_json()).tests == results[4].tests


def test_per_call_limits_override_the_pool_defaults(sandbox):
    slow = "import time\ntime.sleep(1.8)\nprint(1)"
    assert run_stdio(sandbox, slow, expected="1").status == "timeout"
    roomy = LIMITS.model_copy(update={"time_s": 3.0})
    assert run_stdio(sandbox, slow, expected="1", limits=roomy).status == "passed"


def test_limits_validate_their_fields():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        SandboxLimits(time_s=0)
    with pytest.raises(ValidationError):
        SandboxLimits(isolation="sometimes")
    with pytest.raises(ValidationError):
        SandboxLimits(bogus=1)
    with pytest.raises(ValidationError, match="program_time_s"):
        SandboxLimits(time_s=10, program_time_s=5)
