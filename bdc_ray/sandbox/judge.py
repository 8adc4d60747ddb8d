"""Verdicts, decided in the trusted pool from what a worker observed.

Expected outputs live only here. A pass needs positive evidence that cannot come from the
exit status: matching stdout for stdio tests, a nonce-framed returned value that compares
equal for call tests, a nonce-framed completion record for assertion tests.
"""

from __future__ import annotations

import math
import re
import signal
from typing import Any

from bdc_ray.problems.types import AssertTest, CallTest, StdioTest
from bdc_ray.sandbox import evidence, values
from bdc_ray.sandbox.messages import Execution, Job
from bdc_ray.sandbox.results import Status, TestOutcome, tail, trim

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_MEMORY_MARKERS = (b"MemoryError", b"Cannot allocate memory", b"out of memory")


def verdict(
    index: int, test: StdioTest | CallTest | AssertTest, job: Job, ex: Execution, float_tol: float, budget_cut: bool
) -> TestOutcome:
    """The outcome of one executed test."""
    payload = evidence.unframe(ex.record, ex.nonce)
    crash = _crash_text(payload, ex)

    def outcome(status: Status, detail: str = "", **fields: Any) -> TestOutcome:
        """A failure carries its (trimmed) input; a pass keeps results small."""
        return TestOutcome(
            index=index,
            kind=test.kind,
            status=status,
            time_s=round(ex.wall_s, 4),
            cpu_s=round(ex.cpu_s, 4),
            detail=detail,
            input=None if status == "passed" else trim(describe_input(test)),
            **fields,
        )

    if ex.setup_error:
        return outcome("error", ex.setup_error)
    if ex.timed_out:
        limit = "the program's time budget" if budget_cut else f"the {job.wall_s:g} s time limit"
        return outcome("timeout", f"exceeded {limit} (wall clock or CPU)", error=crash)
    if ex.stdout_overflow or ex.stderr_overflow or ex.record_overflow:
        what = "stdout" if ex.stdout_overflow else "stderr" if ex.stderr_overflow else "the returned value"
        return outcome("output-limit", f"{what} exceeded {job.output_bytes} bytes")
    if _out_of_memory(payload, ex):
        return outcome("memory", f"exceeded the {job.memory_bytes >> 20} MiB memory limit", error=crash)
    if isinstance(test, StdioTest):
        return _stdio(test, ex, payload, crash, float_tol, outcome)
    if isinstance(test, CallTest):
        return _call(test, ex, payload, crash, float_tol, outcome)
    return _assert(ex, payload, crash, outcome)


def _stdio(test: StdioTest, ex: Execution, payload: Any, crash: str | None, tol: float, outcome: Any) -> TestOutcome:
    actual = ex.stdout.decode("utf-8", errors="replace")
    if ex.exit_code != 0:
        return outcome("error", _ended(ex, payload), actual=trim(actual), error=crash)
    difference = compare_output(test.output, actual, tol)
    if difference is None:
        return outcome("passed")
    return outcome("failed", difference, expected=trim(test.output), actual=trim(actual))


def _call(test: CallTest, ex: Execution, payload: Any, crash: str | None, tol: float, outcome: Any) -> TestOutcome:
    if payload is None or payload.get("kind") != "return":
        return outcome("error", _ended(ex, payload), error=crash)
    try:
        actual = values.decode(payload.get("value"))
    except ValueError as e:
        return outcome("error", f"malformed result record: {e}")
    if call_result_matches(actual, test.expected, tol):
        return outcome("passed")
    return outcome(
        "failed", "different answer (returned value)", expected=trim(repr(test.expected)), actual=trim(repr(actual))
    )


def _assert(ex: Execution, payload: Any, crash: str | None, outcome: Any) -> TestOutcome:
    if payload is not None and payload.get("kind") == "done":
        return outcome("passed")
    if payload is not None and payload.get("phase") == "test" and payload.get("type") == "AssertionError":
        return outcome("failed", "different answer (assertion failed)", error=crash)
    return outcome("error", _ended(ex, payload), error=crash)


def compare_output(expected: str, actual: str, tol: float) -> str | None:
    """None if `actual` matches `expected` token by token (whitespace-insensitive, floats
    within `tol` relative or absolute), else what differs first."""
    want, got = expected.split(), actual.split()
    for position, (w, g) in enumerate(zip(want, got, strict=False), start=1):
        if w != g and not _tokens_match(w, g, tol):
            return f"different answer at token {position}: expected {trim(w, 80)!r}, got {trim(g, 80)!r}"
    if len(want) != len(got):
        return f"different answer: expected {len(want)} tokens, got {len(got)}"
    return None


def _tokens_match(want: str, got: str, tol: float) -> bool:
    if _INTEGER.fullmatch(want) and _INTEGER.fullmatch(got):
        return _normal_integer(want) == _normal_integer(got)  # exact: no tolerance for integers
    if _NUMBER.fullmatch(want) and _NUMBER.fullmatch(got):
        return math.isclose(float(want), float(got), rel_tol=tol, abs_tol=tol)
    return False


def _normal_integer(token: str) -> str:
    digits = token.lstrip("+-").lstrip("0") or "0"
    return digits if digits == "0" or not token.startswith("-") else "-" + digits


def call_result_matches(actual: Any, expected: Any, tol: float) -> bool:
    """APPS semantics on plain values: compare after a JSON round trip (tuples are lists, dict
    keys strings) and also accept `expected[0]` when `expected` is a one-element list."""
    got = _jsonish(actual)
    if _equal(got, _jsonish(expected), tol):
        return True
    return type(expected) is list and len(expected) == 1 and _equal(got, _jsonish(expected[0]), tol)


def _jsonish(value: Any) -> Any:
    if type(value) in (list, tuple):
        return [_jsonish(v) for v in value]
    if type(value) is dict:
        return {_json_key(k): _jsonish(v) for k, v in value.items()}
    return value


def _json_key(key: Any) -> Any:
    if key is None or type(key) is bool:
        return {None: "null", True: "true", False: "false"}[key]
    return str(key) if type(key) in (int, float) else key


def _equal(a: Any, b: Any, tol: float) -> bool:
    """Equality of plain values with a type check: numbers compare as numbers (floats within
    `tol`), everything else only with its own type."""
    numbers = (int, float, bool)
    if type(a) in numbers and type(b) in numbers:
        if float in (type(a), type(b)):
            return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
        return a == b
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(_equal(x, y, tol) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return a.keys() == b.keys() and all(_equal(a[k], b[k], tol) for k in a)
    return a == b


def _out_of_memory(payload: Any, ex: Execution) -> bool:
    if payload is not None and payload.get("type") == "MemoryError":
        return True
    crashed = ex.exit_code != 0 or ex.signal is not None
    return crashed and any(marker in ex.stderr_tail for marker in _MEMORY_MARKERS)


def _crash_text(payload: Any, ex: Execution) -> str | None:
    if payload is not None and payload.get("kind") == "exception":
        return tail(str(payload.get("traceback", "")))
    return tail(ex.stderr_tail.decode("utf-8", errors="replace")) or None


def _ended(ex: Execution, payload: Any) -> str:
    """One line on how a run ended without a usable result."""
    if payload is not None and payload.get("kind") == "exception":
        lines = [line for line in str(payload.get("traceback", "")).splitlines() if line.strip()]
        return f"{lines[-1] if lines else payload.get('type')} (during {payload.get('phase')})"
    if ex.signal is not None:
        try:
            name = signal.Signals(ex.signal).name
        except ValueError:
            name = f"signal {ex.signal}"
        return f"killed by {name} before producing a result"
    return f"process exited with status {ex.exit_code} before producing a result"


def describe_input(test: StdioTest | CallTest | AssertTest) -> str:
    if isinstance(test, StdioTest):
        return test.input
    if isinstance(test, CallTest):
        return f"{test.fn_name}(*{test.args!r})"
    return test.code
