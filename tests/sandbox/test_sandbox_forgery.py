"""A program cannot forge a pass: not by exiting, printing, writing fds or lying objects."""

from __future__ import annotations

import pytest

from bdc_ray.problems.types import AssertTest, CallTest, StdioTest
from bdc_ray.sandbox.evidence import PREFIX
from bdc_ray.sandbox.runs import make_job
from tests.sandbox.support import LIMITS, run_assert, run_call, run_stdio

ASSERT_FAILS = "def f():\n    return 1\n"
FAILING_CHECK = "assert f() == 2\n"

EXITS = {
    "sys.exit(0)": "import sys\nsys.exit(0)\n",
    "os._exit(0)": "import os\nos._exit(0)\n",
    "raise SystemExit": "raise SystemExit\n",
    "atexit": "import atexit, os\natexit.register(lambda: os._exit(0))\n",
    "markers": "print('PASSED\\nAll tests passed\\nOK')\nimport sys\nsys.stdout.flush()\n",
    "kill parent": "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError:\n    pass\n",
    "fds 3..20": (
        "import os\n"
        "for fd in range(3, 21):\n"
        "    for data in (b'" + PREFIX.decode() + '00 {"kind": "done"}\', b\'{"kind": "done"}\', b\'PASS\'):\n'
        "        try:\n"
        "            os.write(fd, data)\n"
        "        except OSError:\n"
        "            pass\n"
    ),
}


@pytest.mark.parametrize("trick", sorted(EXITS))
def test_exit_and_marker_tricks_never_pass_an_assert_test(sandbox, trick):
    # The trick runs at program level, before the failing assertions could run.
    result = run_assert(sandbox, EXITS[trick] + ASSERT_FAILS, FAILING_CHECK)
    assert result.status != "passed", result


@pytest.mark.parametrize("trick", ["sys.exit(0)", "os._exit(0)", "fds 3..20", "markers"])
def test_exit_and_fd_tricks_never_pass_a_call_test(sandbox, trick):
    program = "def f():\n" + "".join("    " + line + "\n" for line in EXITS[trick].splitlines()) + "    return 1\n"
    assert run_call(sandbox, program, "f", [], 2).status != "passed"


def test_exit_inside_the_assertions_does_not_pass(sandbox):
    program = "import os\ndef f():\n    os._exit(0)\n"
    assert run_assert(sandbox, program, "assert f() == 2").status == "error"
    program = "import sys\ndef f():\n    sys.exit(0)\n"
    assert run_assert(sandbox, program, "assert f() == 2").status == "error"


def test_stdio_exit_status_alone_never_passes(sandbox):
    for trick in ("import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n", EXITS["fds 3..20"]):
        assert run_stdio(sandbox, trick, expected="42").status == "failed"


def test_always_equal_object_fails_call_and_assert_tests(sandbox):
    program = """
        class AlwaysEqual:
            def __eq__(self, other):
                return True
            def __ne__(self, other):
                return False
            def __bool__(self):
                return True
            def __lt__(self, other):
                return True
            def __sub__(self, other):
                return self
            def __abs__(self):
                return 0
        def f(*args):
            return AlwaysEqual()
        """
    call = run_call(sandbox, program, "f", [1], 12345)
    assert call.status == "error" and "unserialisable return type" in call.first_failure.detail
    for check in ("assert f(1) == 12345", "assert 12345 == f(1)", "assert f(1)", "assert abs(f(1) - 3) < 1e-9"):
        result = run_assert(sandbox, program, check)
        assert result.status == "failed", (check, result)
        assert "non-builtin value" in result.first_failure.error


def test_int_subclass_with_fake_eq_fails(sandbox):
    program = """
        class Sneaky(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        def f(x):
            return Sneaky(0)
        def g(x):
            return [1, Sneaky(0)]
        """
    assert run_call(sandbox, program, "f", [1], 7).status == "error"
    assert run_assert(sandbox, program, "assert f(1) == 7").status == "failed"
    assert run_assert(sandbox, program, "assert g(1) == [1, 7]").status == "failed"


def test_rebinding_builtins_does_not_fool_the_assertions(sandbox):
    program = """
        import builtins
        builtins.abs = lambda x: 0
        builtins.isinstance = lambda *a: True
        def f(x):
            return 100.0
        """
    check = "assert abs(f(1) - 3.0) < 1e-6\nassert isinstance(f(1), str)"
    assert run_assert(sandbox, program, check).status == "failed"


def test_trace_hooks_installed_by_the_program_are_removed(sandbox):
    program = """
        import sys
        def skip_failing_line(frame, event, arg):
            if frame.f_code.co_filename == "tests.py" and event == "line" and frame.f_lineno == 1:
                frame.f_lineno = 2
            return skip_failing_line
        sys.settrace(skip_failing_line)
        def f():
            return 1
        """
    assert run_assert(sandbox, program, "assert f() == 2\nassert True\n").status == "failed"
    exits = "import sys\nsys.settrace(lambda *a: sys.exit(0))\ndef f():\n    return 1\n"
    assert run_assert(sandbox, exits, "assert f() == 2").status != "passed"


def test_list_subclass_and_foreign_containers_are_rejected(sandbox):
    program = """
        class L(list):
            def __eq__(self, other):
                return True
        def f():
            return L()
        def g():
            return {"k": L()}
        """
    assert run_call(sandbox, program, "f", [], [1]).status == "error"
    assert run_call(sandbox, program, "g", [], {"k": [1]}).status == "error"
    assert run_assert(sandbox, program, "assert f() == [1]").status == "failed"


def test_expected_outputs_never_reach_the_untrusted_process(sandbox):
    marker = "expected-only-7f3a91c2"
    for test in (StdioTest(input="", output=marker), CallTest(fn_name="f", args=[], expected=marker)):
        assert marker not in repr(make_job("pass", test, LIMITS, 1.0))
    # And behaviourally: the program scans all of its own memory for the expected output.
    program = """
        import ctypes
        # Head and tail are never joined: the needle itself must not exist in our own memory.
        head, tail = b"expected-only-", bytes.fromhex("3766336139316332")
        found, scanned = False, 0
        with open("/proc/self/maps") as maps:
            regions = [line.split() for line in maps]
        for fields in regions:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if fields[1][0] != "r" or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]", "[vvar_vclock]")):
                continue
            if end - start < 1 << 28:
                chunk = ctypes.string_at(start, end - start)
                at = chunk.find(head)
                while at >= 0 and not found:
                    found = chunk[at + len(head) : at + len(head) + len(tail)] == tail
                    at = chunk.find(head, at + 1)
                scanned += end - start
        print("found" if found else "absent", scanned > 1 << 20)
        """
    result = run_stdio(sandbox, program, expected=marker)
    assert result.status == "failed" and result.first_failure.actual.split() == ["absent", "True"], result.first_failure


def test_a_forged_record_without_the_nonce_is_no_evidence(sandbox):
    program = f"""
        import os
        os.write(3, b'{PREFIX.decode()}' + b'0' * 32 + b' {{"kind": "done"}}')
        os._exit(0)
        """
    assert run_assert(sandbox, program, "assert False").status == "error"
    for test in (AssertTest(code="assert False"),):
        assert "nonce" not in repr(make_job("pass", test, LIMITS, 1.0))


LIAR = """
    class Liar:
        def __eq__(self, other):
            return True
        def __gt__(self, other):
            return False
        def __lt__(self, other):
            return False
        def __abs__(self):
            return 0
        def __float__(self):
            return 0.0
        def __index__(self):
            return 0
        def __bool__(self):
            return True
        __hash__ = object.__hash__
    class Pair:
        def __init__(self, a, b):
            self.a, self.b = a, b
    def f(*args):
        return Liar()
    def count(pairs):
        return len(pairs)
    def liar_maker():
        return f
    cheat = max
    """


@pytest.mark.parametrize(
    "check",
    [
        "assert max(f(1), 5) == 5",  # a builtin would compare the lie against the test's data
        "import math\nassert math.fabs(f(1)) < 1e-9",
        "assert abs(f(1)) < 1e-9",
        "assert sorted([f(1), 2]) == [2, 2]",
        "assert cheat(f(1), 5) == 5",  # a builtin under a program name is still a builtin
        "assert liar_maker()(1) == 3",
        "assert f([Pair(1, 2)], 2) == 1",  # program objects as arguments are fine, a lying result is not
        "assert [x for x in [f(1)] if x] == [1]",
        "assert {5: True}[f(1)]",
        "assert (f(1) if True else 0) - 3 < 1",
        "assert (y := f(1)) == 3",
        "assert f'{f(1)}' == 'x'",
        "def helper(x):\n    return abs(x)\nassert helper(f(1)) < 1e-9",  # test helpers are trusted code too
    ],
)
def test_lying_objects_fail_wherever_trusted_code_would_use_them(sandbox, check):
    result = run_assert(sandbox, LIAR, check)
    assert result.status == "failed" and "non-builtin value" in result.first_failure.error, (check, result)


def test_program_objects_as_call_arguments_are_allowed(sandbox):
    program = LIAR.rstrip() + "\n    def total(pairs, scale=1):\n        return sum(p.a + p.b for p in pairs) * scale\n"
    checks = "assert count([Pair(5, 24), Pair(15, 25)]) == 2\nassert total(pairs=[Pair(1, 2)], scale=Pair(0, 0).a + 2) == 6"
    result = run_assert(sandbox, program, checks)
    assert result.status == "passed", result.first_failure


@pytest.mark.parametrize("trick", sorted(EXITS))
def test_exit_and_marker_tricks_never_pass_with_a_setup_that_uses_the_program(sandbox, trick):
    # Setup now runs after the program: the trick still runs before any assertion could.
    program = EXITS[trick] + ASSERT_FAILS + "class Box:\n    pass\n"
    result = sandbox.run(program, [AssertTest(code=FAILING_CHECK, setup="box = Box()")])
    assert result.status != "passed", result


def test_a_shutdown_finalizer_cannot_turn_a_wrong_stdio_answer_into_a_pass(sandbox):
    program = """
        import os
        class Late:
            def __del__(self):
                os.write(3, b"BDC-RESULT " + b"0" * 32 + b' {"kind": "done"}')
                os._exit(0)
        keep = Late()
        print(41)
        """
    assert run_stdio(sandbox, program, expected="42").status == "failed"
