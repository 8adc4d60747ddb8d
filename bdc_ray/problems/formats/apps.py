"""APPS in the Hugging Face `codeparrot/apps` schema.

`input_output` and `solutions` are JSON text inside the record, and may be "" when a problem
has none. With `fn_name` the problem is call-based (LeetCode style, often a `class Solution`
method given as starter code) and each input is the argument list; otherwise it is a
stdin/stdout program and inputs/outputs may be lists of lines, joined with newlines as the
APPS harness does.
"""

from __future__ import annotations

from typing import Any

from bdc_ray.problems.formats.common import BadRecord, json_field, require, strings, text
from bdc_ray.problems.split import split_tests
from bdc_ray.problems.types import CallTest, Problem, StdioTest

NAME = "apps"


def matches(record: dict[str, Any]) -> bool:
    return all(k in record for k in ("problem_id", "question", "input_output"))


def to_problem(record: dict[str, Any]) -> Problem:
    require(record, "problem_id", "question", "input_output")
    problem_id = str(record["problem_id"])
    io = json_field(record, "input_output") or {}
    if not isinstance(io, dict):
        raise BadRecord("input_output must be a JSON object")
    fn_name = io.get("fn_name") or None
    tests = io_tests(io)
    solutions = strings(json_field(record, "solutions") or [], "solutions")
    public, hidden = split_tests(problem_id, tests)
    starter_code = record.get("starter_code") or ""
    difficulty = record.get("difficulty")
    url = record.get("url")
    return Problem(
        id=problem_id,
        source=NAME,
        prompt=text(record, "question"),
        public_tests=public,
        hidden_tests=hidden,
        starter_code=starter_code,
        entry_point=fn_name,
        reference_solutions=solutions,
        difficulty=None if difficulty is None else str(difficulty),
        metadata={"url": url} if url else {},
    )


def io_tests(io: dict[str, Any]) -> list[CallTest | StdioTest]:
    """The tests of an `input_output` object: call tests with `fn_name`, stdin/stdout tests without."""
    fn_name = io.get("fn_name") or None
    inputs, outputs = io.get("inputs", []), io.get("outputs", [])
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise BadRecord("input_output inputs and outputs must be lists")
    if len(inputs) != len(outputs):
        raise BadRecord(f"input_output has {len(inputs)} inputs but {len(outputs)} outputs")
    if not inputs:
        raise BadRecord("no tests: input_output has no inputs")
    if fn_name is not None:
        if not isinstance(fn_name, str):
            raise BadRecord("input_output fn_name must be a string")
        if not all(isinstance(args, list) for args in inputs):
            raise BadRecord("call-based inputs must be argument lists")
        return [CallTest(fn_name=fn_name, args=args, expected=out, source=NAME) for args, out in zip(inputs, outputs)]
    return [
        StdioTest(input=_stdio(i, "input"), output=_stdio(o, "output"), source=NAME) for i, o in zip(inputs, outputs)
    ]


def _stdio(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    return "\n".join(strings(value, f"a stdio {what}"))
