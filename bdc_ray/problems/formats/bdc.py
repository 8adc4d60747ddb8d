"""The project's own format: one `Problem.model_dump_json()` per line.

Problems written by an earlier stage already carry their split, so they are validated and
used as they are, never re-split.
"""

from __future__ import annotations

from typing import Any

from bdc_ray.problems.types import Problem

NAME = "bdc"


def matches(record: dict[str, Any]) -> bool:
    has_tests = "public_tests" in record or "hidden_tests" in record
    return has_tests and all(k in record for k in ("id", "source", "prompt"))


def to_problem(record: dict[str, Any]) -> Problem:
    return Problem.model_validate(record)
