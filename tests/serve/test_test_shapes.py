"""/solve's test shapes: each shape users write, dataset records read by the loaders' own parsers, and
refusals that name the expected fields."""

import json

import pytest

from bdc_ray.problems.loaders import load_problems
from bdc_ray.problems.types import AssertTest, CallTest, StdioTest
from bdc_ray.serve.api import APIError, SolveRequest
from bdc_ray.serve.test_shapes import EXPECTED, parse_tests, solve_inputs
from tests.conftest import FIXTURES


def _records(path):
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        text = fh.read()
    return json.loads(text) if text.lstrip().startswith("[") else [json.loads(line) for line in text.splitlines() if line]


@pytest.mark.parametrize("path", [
    "humaneval/HumanEval-3.jsonl.gz", "mbpp/sanitized-mbpp-3.json", "mbpp/mbpp-original-3.jsonl", "apps/apps-5.jsonl",
    "codecontests/alphacodium-example.jsonl", "codecontests/codecontests-repr.jsonl",
])
def test_a_whole_record_gives_its_statement_and_every_test_the_loader_reads(path):
    problems, _ = load_problems(FIXTURES / path)
    for record, problem in zip(_records(FIXTURES / path), problems):
        statement, tests = solve_inputs(SolveRequest(record=record))
        assert statement == problem.prompt and tests == problem.tests
        own, with_extra = solve_inputs(SolveRequest(record=record, problem="mine", tests=["assert True"]))
        assert own == "mine" and with_extra == problem.tests + [AssertTest(code="assert True")]


def test_the_test_fields_of_each_dataset_as_items():
    humaneval = _records(FIXTURES / "humaneval/HumanEval-3.jsonl.gz")[0]
    mbpp = _records(FIXTURES / "mbpp/sanitized-mbpp-3.json")[0]
    apps = _records(FIXTURES / "apps/apps-5.jsonl")[0]
    contest = _records(FIXTURES / "codecontests/alphacodium-example.jsonl")[0]
    items = [
        {"test": humaneval["test"], "entry_point": humaneval["entry_point"]},
        {"test_list": mbpp["test_list"], "test_imports": mbpp["test_imports"]},
        {"input_output": apps["input_output"]},
        {"public_tests": contest["public_tests"], "private_tests": contest["private_tests"]},
        contest["public_tests"],  # one CodeContests mapping: {"input": [...], "output": [...]}
    ]
    tests = [parse_tests([item]) for item in items]
    loaded = {p.source: p for path in ("humaneval/HumanEval-3.jsonl.gz", "mbpp/sanitized-mbpp-3.json",
                                       "apps/apps-5.jsonl", "codecontests/alphacodium-example.jsonl")
              for p in load_problems(FIXTURES / path)[0][:1]}
    assert tests[0] == loaded["humaneval"].tests
    assert tests[1] == loaded["mbpp"].tests
    assert tests[2] == loaded["apps"].tests
    assert len(tests[3]) == len(contest["public_tests"]["input"]) + len(contest["private_tests"]["input"])
    assert tests[4] == [StdioTest(input=i, output=o) for i, o in zip(contest["public_tests"]["input"],
                                                                      contest["public_tests"]["output"])]


def test_the_shapes_users_write():
    tests = parse_tests([
        {"input": "1 2\n", "output": "3\n"},
        {"fn_name": "add", "args": [1, 2], "expected": 3},
        {"fn_name": "add", "inputs": [[1, 2], [3, 4]], "outputs": [3, 7]},
        {"inputs": ["1 2\n"], "outputs": ["3\n"]},
        "assert add(1, 2) == 3",
        {"code": "assert add(2, 2) == 4", "setup": "import math"},
        {"kind": "stdio", "input": "", "output": "x\n"},
    ])
    assert tests == [
        StdioTest(input="1 2\n", output="3\n"),
        CallTest(fn_name="add", args=[1, 2], expected=3),
        CallTest(fn_name="add", args=[1, 2], expected=3), CallTest(fn_name="add", args=[3, 4], expected=7),
        StdioTest(input="1 2\n", output="3\n"),
        AssertTest(code="assert add(1, 2) == 3"),
        AssertTest(code="assert add(2, 2) == 4", setup="import math"),
        StdioTest(input="", output="x\n"),
    ]


@pytest.mark.parametrize(("item", "says"), [
    ({"stdin": "1", "stdout": "2"}, "cannot tell which kind of test has the keys ['stdin', 'stdout']"),
    ({"input": "1", "output": "2", "fn_name": "f"}, "cannot tell"),
    ({}, "cannot tell"),
    ({"input": "1", "output": ["2"]}, "both be strings (one test) or both lists"),
    ({"fn_name": "f", "args": 3, "expected": 1}, "args: Input should be a valid list"),
    ({"fn_name": "f", "inputs": [1], "outputs": [1]}, "call-based inputs must be argument lists"),
    ({"inputs": ["1"], "outputs": []}, "1 inputs but 0 outputs"),
    ({"input_output": "{not json"}, "not valid JSON"),
    ({"public_tests": "[[[" * 40}, "not a Python literal"),
    ({"test_list": []}, "test_list is empty"),
    ({"kind": "shell", "cmd": "rm -rf /"}, "does not match any of the expected tags"),
    ({"kind": "call", "fn_name": "f", "args": [], "expected": 1, "timeout": 99}, "timeout: unknown field"),
])
def test_an_item_that_fits_no_shape_is_refused_naming_what_was_expected(item, says):
    with pytest.raises(APIError) as err:
        parse_tests(["assert True", item])
    assert err.value.status == 400 and err.value.param == "tests"
    assert err.value.message.startswith("tests[1]") and says in err.value.message
    if "cannot tell" in says:
        assert EXPECTED in err.value.message and "{input, output}" in EXPECTED


def test_a_request_needs_a_problem_or_a_record():
    with pytest.raises(APIError, match="give `problem`"):
        solve_inputs(SolveRequest(tests=["assert True"]))
    with pytest.raises(APIError, match="record: the record's keys") as err:
        solve_inputs(SolveRequest(record={"question": "q"}))
    assert err.value.param == "record"
    with pytest.raises(APIError, match="record: no tests"):
        solve_inputs(SolveRequest(record={"task_id": "t", "text": "x", "code": "def f(): pass", "test_list": []}))
