"""MBPP, both the original `mbpp.jsonl` and the sanitized `sanitized-mbpp.json`.

The two differ only in field names (`text` vs `prompt`, `test_setup_code` vs
`test_imports`), so one converter serves both. Each assert is its own test. The prompt shows
one test because the task text alone does not name the function the asserts call; it shows
the first PUBLIC test, not `test_list[0]`, so a prompt never reveals a hidden test.
"""

from __future__ import annotations

import ast
from typing import Any

from bdc_ray.problems.formats.common import BadRecord, require, strings, text
from bdc_ray.problems.split import split_tests
from bdc_ray.problems.types import AssertTest, Problem

NAME = "mbpp"


def matches(record: dict[str, Any]) -> bool:
    return all(k in record for k in ("task_id", "code", "test_list")) and ("text" in record or "prompt" in record)


def to_problem(record: dict[str, Any]) -> Problem:
    require(record, "task_id", "code", "test_list")
    if "text" not in record and "prompt" not in record:
        raise BadRecord("missing keys: text (original MBPP) or prompt (sanitized MBPP)")
    task_id = str(record["task_id"])
    task = text(record, "text" if "text" in record else "prompt")
    code = text(record, "code")
    tests = assert_tests(record)
    entry_point = _entry_point(code, [t.code for t in tests])
    public, hidden = split_tests(task_id, tests)
    if public:
        prompt = f"{task}\nYour code should pass this test:\n\n{public[0].code}\n"
    else:
        prompt = f"{task}\nWrite it as a function named `{entry_point}`.\n"
    # challenge_test_list (original MBPP only) is not part of the standard MBPP score; it is
    # kept unsplit so nothing in the file is lost.
    challenge = strings(record.get("challenge_test_list") or [], "challenge_test_list")
    return Problem(
        id=task_id,
        source=NAME,
        prompt=prompt,
        public_tests=public,
        hidden_tests=hidden,
        entry_point=entry_point,
        reference_solutions=[code],
        metadata={"challenge_test_list": challenge} if challenge else {},
    )


def assert_tests(record: dict[str, Any]) -> list[AssertTest]:
    """Every assert of `test_list`, each with the record's set-up code (imports, test_setup_code)."""
    asserts = strings(record["test_list"], "test_list")
    if not asserts:
        raise BadRecord("no tests: test_list is empty")
    setup = _setup(record)
    return [AssertTest(code=a, setup=setup, source=NAME) for a in asserts]


def _setup(record: dict[str, Any]) -> str:
    imports = strings(record.get("test_imports") or [], "test_imports")
    setup_code = record.get("test_setup_code") or ""
    if not isinstance(setup_code, str):
        raise BadRecord("test_setup_code must be a string")
    return "\n".join(part for part in [*imports, setup_code] if part)


def _entry_point(code: str, asserts: list[str]) -> str:
    """The top-level function of the reference code that the asserts call.

    Reference code often defines helpers before the tested function (MBPP 6, 18, 56, ...),
    so neither the first nor the only `def` is reliably the one to name.
    """
    try:
        defs = [s.name for s in ast.parse(code).body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
    except SyntaxError as err:
        raise BadRecord(f"code does not parse: {err}") from None
    if not defs:
        raise BadRecord("code defines no top-level function")
    called: set[str] = set()
    for i, line in enumerate(asserts):
        try:
            tree = ast.parse(line)
        except SyntaxError as err:
            raise BadRecord(f"test_list[{i}] does not parse: {err}") from None
        called |= {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return next((name for name in defs if name in called), defs[-1])
