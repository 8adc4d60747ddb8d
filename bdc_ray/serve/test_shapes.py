"""/solve's tests in the shapes users write, turned into the sandbox's three kinds.

Each item of `tests` is recognised by its keys (a plain string is assertion code):

| keys                                                     | tests                                              |
|----------------------------------------------------------|----------------------------------------------------|
| `input`, `output` (strings)                              | one stdin/stdout test                              |
| `input`, `output` (lists of strings) [, `is_valid_test`] | stdin/stdout tests (a CodeContests test mapping)   |
| `fn_name`, `args`, `expected`                            | one call test                                      |
| `fn_name`, `inputs`, `outputs`                           | call tests (APPS' call-based input_output)         |
| `inputs`, `outputs`                                      | stdin/stdout tests (APPS' input_output)            |
| `input_output` (JSON text or object)                     | an APPS record's tests                             |
| any of `public_tests`, `private_tests`, `generated_tests`| a CodeContests record's tests                      |
| `code` [, `setup`]                                       | assertion code                                     |
| `test`, `entry_point`                                    | a HumanEval `check(candidate)` test                |
| `test_list` [, `test_setup_code`, `test_imports`]        | MBPP asserts                                       |
| `kind` (stdio, call or assert) and that kind's fields    | the project's own form                             |

Exactly one shape fits an item's keys, or the request is refused with these shapes listed. A
whole dataset record goes in `record` instead: its statement and every test it carries. The
dataset shapes are read by the loaders' own parsers (bdc_ray/problems/formats), so a test means
here what it means in the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from bdc_ray.problems.formats import apps, codecontests, humaneval, mbpp
from bdc_ray.problems.formats.common import BadRecord, json_field
from bdc_ray.problems.loaders import problem_from_record
from bdc_ray.problems.types import AssertTest, CallTest, StdioTest, Test
from bdc_ray.serve.api import APIError, SolveRequest, validation_message

_TEST = TypeAdapter(Test)
CODECONTESTS_FIELDS = frozenset(codecontests.TEST_FIELDS)
# What a hostile item can make a parser raise (ast.literal_eval of CodeContests' repr strings included).
_REFUSED = (ValueError, TypeError, SyntaxError, RecursionError, MemoryError)


@dataclass(frozen=True)
class Shape:
    name: str
    fits: Callable[[frozenset[str]], bool]
    parse: Callable[[dict[str, Any], str], list[Test]]
    """(item, its path in the request) -> tests; the path names the item in parser errors."""


def _keys(required: set[str], optional: set[str] = frozenset()) -> Callable[[frozenset[str]], bool]:
    return lambda keys: required <= keys <= required | optional


def _plain(tests: Iterable[Test]) -> list[Test]:
    """Tests a user wrote in a benchmark's shape, without that benchmark's tag: they run under the
    Serve sandbox's own limits, not the benchmark's (only whole record fields keep their source)."""
    return [t.model_copy(update={"source": None}) for t in tests]


def _pair(item: dict[str, Any], where: str) -> list[Test]:
    given, wanted = item["input"], item["output"]
    if isinstance(given, str) and isinstance(wanted, str):
        return [StdioTest(input=given, output=wanted)]
    if isinstance(given, list) and isinstance(wanted, list):
        return _plain(codecontests.tests_of({where: item}, where))
    raise BadRecord("input and output must both be strings (one test) or both lists of strings (several)")


def _apps_field(item: dict[str, Any], where: str) -> list[Test]:
    io = item["input_output"] if isinstance(item["input_output"], dict) else json_field(item, "input_output")
    if not isinstance(io, dict):
        raise BadRecord("input_output must be a JSON object (or its JSON text) with inputs and outputs")
    return list(apps.io_tests(io))


def _codecontests(item: dict[str, Any], where: str) -> list[Test]:
    return [t for key in codecontests.TEST_FIELDS for t in codecontests.tests_of(item, key)]


def _assertion(item: dict[str, Any], where: str) -> list[Test]:
    return [AssertTest.model_validate(item)]


def _humaneval(item: dict[str, Any], where: str) -> list[Test]:
    test, entry_point = item["test"], item["entry_point"]
    if not isinstance(test, str) or not isinstance(entry_point, str):
        raise BadRecord("test and entry_point must be strings")
    return [humaneval.check_test(test, entry_point)]


SHAPES: tuple[Shape, ...] = (
    Shape("{input, output}: stdin/stdout (strings: one test; lists: a CodeContests mapping, is_valid_test allowed)",
          _keys({"input", "output"}, {"is_valid_test"}), _pair),
    Shape("{fn_name, args, expected}: one call test", _keys({"fn_name", "args", "expected"}),
          lambda item, where: [CallTest.model_validate(item)]),
    Shape("{fn_name, inputs, outputs}: call tests (APPS)", _keys({"fn_name", "inputs", "outputs"}),
          lambda item, where: _plain(apps.io_tests(item))),
    Shape("{inputs, outputs}: stdin/stdout tests (APPS)", _keys({"inputs", "outputs"}),
          lambda item, where: _plain(apps.io_tests(item))),
    Shape("{input_output}: an APPS record's field", _keys({"input_output"}), _apps_field),
    Shape("{public_tests, private_tests, generated_tests} (any): a CodeContests record's tests",
          lambda keys: bool(keys) and keys <= CODECONTESTS_FIELDS, _codecontests),
    Shape("{code[, setup]} or a string: assertion code", _keys({"code"}, {"setup"}), _assertion),
    Shape("{test, entry_point}: a HumanEval check", _keys({"test", "entry_point"}), _humaneval),
    Shape("{test_list[, test_setup_code, test_imports, challenge_test_list]}: MBPP asserts",
          _keys({"test_list"}, {"test_setup_code", "test_imports", "challenge_test_list"}),
          lambda item, where: list(mbpp.assert_tests(item))),
    Shape("{kind: stdio|call|assert, ...}: the project's own form", lambda keys: "kind" in keys,
          lambda item, where: [_TEST.validate_python(item)]),
)
EXPECTED = "; ".join(shape.name for shape in SHAPES)


def item_tests(item: str | dict[str, Any], where: str) -> list[Test]:
    """The tests of one item of `tests` (`where` is its path, e.g. `tests[2]`)."""
    if isinstance(item, str):
        return [AssertTest(code=item)]
    keys = frozenset(item)
    fitting = [shape for shape in SHAPES if shape.fits(keys)]
    if len(fitting) != 1:  # the shapes' key sets never overlap, so this is "none fits"
        raise APIError(400, f"{where}: cannot tell which kind of test has the keys {sorted(keys)[:12]}; expected "
                       f"one of: {EXPECTED}", param="tests")
    shape = fitting[0]
    try:
        tests = shape.parse(item, where)
    except _REFUSED as err:
        raise APIError(400, f"{where} read as {shape.name}: {_reason(err)}", param="tests") from None
    if not tests:
        raise APIError(400, f"{where} read as {shape.name} holds no test", param="tests")
    return tests


def _reason(err: BaseException) -> str:
    return validation_message(err) if isinstance(err, ValidationError) else f"{err}" or type(err).__name__


def parse_tests(items: Sequence[str | dict[str, Any]]) -> list[Test]:
    return [test for i, item in enumerate(items) for test in item_tests(item, f"tests[{i}]")]


def solve_inputs(body: SolveRequest) -> tuple[str, list[Test]]:
    """The problem statement and the tests of a /solve request: `problem` and `tests`, and a `record`'s
    statement (unless `problem` is given) and all its tests (before those of `tests`)."""
    tests = parse_tests(body.tests)
    problem = body.problem
    if body.record is not None:
        try:
            parsed = problem_from_record(body.record)
        except _REFUSED as err:
            raise APIError(400, f"record: {_reason(err)}", param="record") from None
        tests = parsed.tests + tests
        problem = problem or parsed.prompt
    if not problem:
        raise APIError(400, "give `problem` (the statement) or `record` (a dataset record)", param="problem")
    return problem, tests
