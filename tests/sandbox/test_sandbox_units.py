"""The pure pieces: value encoding, output comparison, source rewriting, record framing."""

from __future__ import annotations

import ast
import builtins
import functools
import math
from collections import Counter, deque

import pytest

from bdc_ray.sandbox import evidence, values
from bdc_ray.sandbox.judge import call_result_matches, compare_output
from bdc_ray.sandbox.header import header_namespace
from bdc_ray.sandbox.source import PROGRAM_FILE, compile_program, compile_tests, script_text


def repr_of_type(value: object) -> str:
    return type(value).__name__


@pytest.mark.parametrize(
    "value",
    [
        0,
        -(10**5000),
        1.5,
        math.inf,
        True,
        None,
        "é\ud800",
        b"\x00\xff",
        [1, (2, 3)],
        {"a": {1: None}},
        {1, 2},
        frozenset({"x"}),
        ((),),
    ],
    ids=repr_of_type,
)
def test_encoding_round_trips_plain_values_with_their_types(value):
    decoded = values.decode(values.encode(value))
    assert decoded == value and type(decoded) is type(value)


def test_encoding_keeps_nan_and_bool_int_distinct():
    assert math.isnan(values.decode(values.encode(math.nan)))
    assert type(values.decode(values.encode(True))) is bool and type(values.decode(values.encode(1))) is int


@pytest.mark.parametrize("value", [type("Sneaky", (int,), {})(3), [1, object()], {"k": deque()}, 1j, range(3)])
def test_encoding_rejects_anything_but_exact_builtins(value):
    with pytest.raises(values.Unserialisable, match="unserialisable return type"):
        values.encode(value)


def test_encoding_rejects_cycles_and_absurd_depth():
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(values.Unserialisable, match="deeper"):
        values.encode(cycle)


@pytest.mark.parametrize(
    "forged", [["i"], ["x", 1], ["l", "notalist"], ["s", 3], "i", ["S", [["l", []]]], ["d", [[1]]]]
)
def test_decoding_rejects_malformed_records(forged):
    with pytest.raises(ValueError):
        values.decode(forged)


def test_plainness_checks():
    class Lying:
        def __eq__(self, other):
            return True

    assert values.impure_type([1, {"a": (2.0, None)}, Counter("ab"), deque([1]), int]) is None
    assert values.impure_type([1, Lying()]).endswith("Lying")
    assert values.program_type(iter([1])) is None and values.program_type(map(str, [])) is None
    assert values.program_type({"k": [Lying()]}).endswith("Lying")
    assert values.impure_type(map(str, [])) == "builtins.map"


@pytest.mark.parametrize(
    ("expected", "actual", "same"),
    [
        ("1 2\n3", "1\n2 3  \n", True),
        ("0.5", "0.5000001", True),
        ("1e-9", "0", True),
        ("100000000", "100000001", False),
        ("5", "5.0", True),
        ("007", "7", True),
        ("-0", "0", True),
        ("YES", "yes", False),
        ("1 2", "1 2 3", False),
        ("", "\n", True),
        ("1.0", "nan", False),
    ],
)
def test_stdout_comparison(expected, actual, same):
    assert (compare_output(expected, actual, 1e-6) is None) is same


def test_call_comparison_follows_apps_semantics():
    assert call_result_matches((1, [2, (3,)]), [1, [2, [3]]], 1e-6)
    assert call_result_matches([1, 2], [[1, 2]], 1e-6)
    assert call_result_matches({1: "a", None: 2}, {"1": "a", "null": 2}, 1e-6)
    assert call_result_matches(0.30000000000000004, 0.3, 1e-6)
    assert call_result_matches(True, 1, 1e-6)
    assert not call_result_matches("1", 1, 1e-6)
    assert not call_result_matches([1], 1, 1e-6)
    assert not call_result_matches({1}, [1], 1e-6)
    assert not call_result_matches([1, 2], [[1, 2], [3]], 1e-6)


def test_programs_needing_a_function_body_are_wrapped_only_when_asked():
    program = "from math import *\nx = int('4')\nif x:\n    print(sqrt(x))\n    return\nprint('no')\n"
    assert "__bdc_main__" in compile_program(program, wrap=True).co_names
    with pytest.raises(SyntaxError, match="'return' outside function"):
        compile_program(program)
    assert "__bdc_main__" not in compile_program("print(1)\n", wrap=True).co_names
    with pytest.raises(SyntaxError, match="nonlocal 'q'"):
        compile_program("return 1\ndef f():\n    nonlocal q\n", wrap=True)  # unfixable even wrapped


def test_script_text_is_what_the_sandbox_compiles():
    program = "n = 1\nif n:\n    print('yes')\n    return\nprint('no')\n"
    assert script_text(program) == program and script_text("print(1)\n", wrap=True) == "print(1)\n"
    wrapped = script_text(program, wrap=True)
    assert "def __bdc_main__():" in wrapped
    assert ast.dump(ast.parse(wrapped)) == ast.dump(ast.parse(ast.unparse(_wrapped(program))))
    assert script_text("return 1\ndef f():\n    nonlocal q\n", wrap=True).startswith("return 1")


def _wrapped(program: str) -> ast.Module:
    from bdc_ray.sandbox.source import _wrapped_in_function

    return _wrapped_in_function(ast.parse(program))


def test_the_import_header_shadows_no_builtin():
    assert not set(header_namespace()) & set(vars(builtins))
    assert {"deque", "gcd", "List", "accumulate", "sqrt"} <= set(header_namespace())


def test_assertions_are_rewritten_to_check_what_they_compare():
    tree = ast.parse("assert f(1) == [2], 'msg'\nassert not g(x)\ny = f(1)")
    code = compile_tests(ast.unparse(tree))
    assert {"__bdc_plain__", "__bdc_vetted__", "__bdc_callee__"} <= set(code.co_names)
    namespace = {"f": lambda v: [v + 1], "g": lambda v: False, "x": 0}
    namespace.update(
        __bdc_plain__=values.require_plain,
        __bdc_vetted__=values.require_no_program_types,
        __bdc_callee__=values.vet_callee,
    )
    exec(code, namespace)
    namespace["f"] = lambda v: type("AlwaysEqual", (), {"__eq__": lambda s, o: True})()
    with pytest.raises(AssertionError, match="non-builtin value"):
        exec(code, namespace)


def test_only_the_programs_own_code_counts_as_program_code():
    program = compile(
        "import functools\n"
        "def f(x):\n    return x\n"
        "class C:\n    def m(self):\n        return 1\n    def __call__(self):\n        return 2\n"
        "cached = functools.lru_cache(maxsize=None)(f)\n",
        PROGRAM_FILE,
        "exec",
    )
    namespace = {"__name__": "__main__"}
    exec(program, namespace)
    f, cls = namespace["f"], namespace["C"]
    for mine in (f, cls, cls().m, cls(), namespace["cached"]):
        assert values.is_program_code(mine), mine
    def helper(x):  # defined by the tests, not the program
        return x
    for theirs in (abs, max, math.isclose, helper, Counter, functools.partial(f), functools.lru_cache(None)(len)):
        assert not values.is_program_code(theirs), theirs
    lying = cls()
    with pytest.raises(AssertionError, match="non-builtin value"):
        values.vet_callee(max)(lying, 3)
    assert values.vet_callee(f) is f and values.vet_callee(max)(1, 3) == 3


def test_records_count_only_with_the_right_nonce_and_nothing_else():
    nonce, other = b"n" * 16, b"o" * 16
    record = evidence.frame(nonce, {"kind": "done"})
    assert evidence.unframe(record, nonce) == {"kind": "done"}
    assert evidence.unframe(record, other) is None
    assert evidence.unframe(record + record, nonce) is None
    assert evidence.unframe(b"junk" + record, nonce) is None
    assert evidence.unframe(evidence.PREFIX + nonce.hex().encode() + b" [1]", nonce) is None
