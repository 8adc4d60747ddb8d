"""Verdicts of the sandbox, shaped for JSON logs and for rewards alike."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, computed_field

Status = Literal["passed", "failed", "error", "timeout", "memory", "output-limit"]
"""`failed` is a different answer (wrong output, wrong value, failed assertion); `error` is a
crash (exception, non-zero exit, no result), so the two are never confused."""

TRIM_CHARS = 1000


def trim(text: str | None, limit: int = TRIM_CHARS) -> str | None:
    """Head of `text`, marked when cut, so that huge inputs and outputs stay loggable."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more chars]"


def tail(text: str | None, limit: int = TRIM_CHARS * 2) -> str | None:
    """End of `text` (where a traceback says what went wrong), marked when cut."""
    if text is None or len(text) <= limit:
        return text
    return f"[{len(text) - limit} chars cut]...{text[-limit:]}"


class TestOutcome(BaseModel):
    """What happened to one test. For anything but a pass, `detail` says why in one line."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    __test__ = False  # not a pytest class, despite the name

    index: int
    kind: Literal["stdio", "call", "assert"]
    status: Status
    time_s: float
    cpu_s: float = 0.0
    detail: str = ""
    input: str | None = None
    expected: str | None = None
    actual: str | None = None
    error: str | None = None


class RunResult(BaseModel):
    """All tests of one program. `status` is `passed` iff every test passed, else the status of
    the first test that did not pass; `tests` lists the tests that ran, in order."""

    model_config = ConfigDict(frozen=True)

    status: Status
    passed: int
    total: int
    tests: list[TestOutcome]
    wall_s: float
    error: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def first_failure(self) -> TestOutcome | None:
        return next((t for t in self.tests if t.status != "passed"), None)

    @classmethod
    def of(cls, outcomes: list[TestOutcome], total: int, wall_s: float) -> RunResult:
        passed = sum(t.status == "passed" for t in outcomes)
        failure = next((t for t in outcomes if t.status != "passed"), None)
        if failure is not None:
            status: Status = failure.status
        elif total and passed == total:
            status = "passed"
        else:
            status = "error"
        return cls(status=status, passed=passed, total=total, tests=outcomes, wall_s=wall_s)

    @classmethod
    def refused(cls, reason: str) -> RunResult:
        """A run that could not start (no tests, say): an error, never a pass."""
        return cls(status="error", passed=0, total=0, tests=[], wall_s=0.0, error=reason)
