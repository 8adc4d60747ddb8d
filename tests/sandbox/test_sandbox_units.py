"""The pure pieces: value encoding, output comparison, source rewriting, record framing."""

from __future__ import annotations

import ast
import math
from collections import Counter, deque

import pytest

from bdc_ray.sandbox import evidence, values
from bdc_ray.sandbox.judge import call_result_matches, compare_output
from bdc_ray.sandbox.source import compile_program, compile_tests


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


def test_programs_needing_a_function_body_are_wrapped():
    code = compile_program("from math import *\nx = int('4')\nif x:\n    print(sqrt(x))\n    return\nprint('no')\n")
    assert "__bdc_main__" in code.co_names
    assert "__bdc_main__" not in compile_program("print(1)\n").co_names
    with pytest.raises(SyntaxError, match="nonlocal 'q'"):
        compile_program("return 1\ndef f():\n    nonlocal q\n")  # unfixable even wrapped


def test_assertions_are_rewritten_to_check_what_they_compare():
    tree = ast.parse("assert f(1) == [2], 'msg'\nassert not g(x)\ny = f(1)")
    code = compile_tests(ast.unparse(tree))
    assert {"__bdc_plain__", "__bdc_vetted__"} <= set(code.co_names)
    namespace = {"f": lambda v: [v + 1], "g": lambda v: False, "x": 0}
    namespace.update(__bdc_plain__=values.require_plain, __bdc_vetted__=values.require_no_program_types)
    exec(code, namespace)
    namespace["f"] = lambda v: type("AlwaysEqual", (), {"__eq__": lambda s, o: True})()
    with pytest.raises(AssertionError, match="non-builtin value"):
        exec(code, namespace)


def test_records_count_only_with_the_right_nonce_and_nothing_else():
    nonce, other = b"n" * 16, b"o" * 16
    record = evidence.frame(nonce, {"kind": "done"})
    assert evidence.unframe(record, nonce) == {"kind": "done"}
    assert evidence.unframe(record, other) is None
    assert evidence.unframe(record + record, nonce) is None
    assert evidence.unframe(b"junk" + record, nonce) is None
    assert evidence.unframe(evidence.PREFIX + nonce.hex().encode() + b" [1]", nonce) is None
