"""CodeContests in the Hugging Face `deepmind/code_contests` schema.

The dataset already separates the tests it shows (`public_tests`, the statement's examples)
from those it keeps back (`private_tests`, `generated_tests`), so that split is kept rather
than recomputed. Test and solution fields arrive as mappings, or as Python-repr strings in
dumps made with `str()` of a dataset row (AlphaCodium's files), read with `ast.literal_eval`.
"""

from __future__ import annotations

import ast
from typing import Any

from bdc_ray.problems.formats.common import BadRecord, require, strings, text
from bdc_ray.problems.split import split_tests
from bdc_ray.problems.types import Problem, StdioTest

NAME = "codecontests"
TEST_FIELDS = ("public_tests", "private_tests", "generated_tests")
# HF stores the language as a ClassLabel index; exports that decode labels give the name.
PYTHON3 = (3, "PYTHON3")
# Judge settings a sandbox may want (per-problem time and memory limits) and provenance.
METADATA_KEYS = ("source", "cf_contest_id", "cf_index", "cf_rating", "cf_tags", "time_limit", "memory_limit_bytes")


def matches(record: dict[str, Any]) -> bool:
    return "name" in record and "description" in record and any(k in record for k in TEST_FIELDS)


def to_problem(record: dict[str, Any]) -> Problem:
    require(record, "name", "description")
    name = text(record, "name")
    public = tests_of(record, "public_tests")
    kept_back = tests_of(record, "private_tests") + tests_of(record, "generated_tests")
    if not public and not kept_back:
        raise BadRecord("no tests: public, private and generated tests are all empty")
    if not public or not kept_back:
        # One side empty would leave either nothing to reward a search with or nothing to
        # evaluate on; fall back to the same split the other benchmarks use.
        public, kept_back = split_tests(name, public + kept_back)
    difficulty = record.get("difficulty")
    return Problem(
        id=name,
        source=NAME,
        prompt=text(record, "description"),
        public_tests=public,
        hidden_tests=kept_back,
        reference_solutions=_python3_solutions(record.get("solutions")),
        difficulty=None if difficulty is None else str(difficulty),
        metadata={k: record[k] for k in METADATA_KEYS if record.get(k) is not None},
    )


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError) as err:
            raise BadRecord(f"{key} is a string but not a Python literal: {err}") from None
    if not isinstance(value, dict):
        raise BadRecord(f"{key} must be a mapping, got {type(value).__name__}")
    return value


def tests_of(record: dict[str, Any], key: str) -> list[StdioTest]:
    """The stdin/stdout tests of one test field (`{"input": [...], "output": [...]}`, or its repr)."""
    if record.get(key) is None:
        return []
    tests = _mapping(record[key], key)
    inputs = strings(tests.get("input", []), f"{key}.input")
    outputs = strings(tests.get("output", []), f"{key}.output")
    if len(inputs) != len(outputs):
        raise BadRecord(f"{key} has {len(inputs)} inputs but {len(outputs)} outputs")
    return [StdioTest(input=i, output=o, source=NAME) for i, o in zip(inputs, outputs)]


def _python3_solutions(value: Any) -> list[str]:
    if value is None:
        return []
    solutions = _mapping(value, "solutions")
    languages = solutions.get("language", [])
    code = strings(solutions.get("solution", []), "solutions.solution")
    if not isinstance(languages, list) or len(languages) != len(code):
        raise BadRecord("solutions.language and solutions.solution must be lists of the same length")
    return [c for lang, c in zip(languages, code) if lang in PYTHON3]
