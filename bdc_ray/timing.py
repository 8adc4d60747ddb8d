"""The fixed costs of the stages, named and timed: `with phase("agent actors ready"): ...`.

A stage wraps what it pays before its work starts (Ray init, actors started, models loaded, a
Train run reaching its first step) in `phase(name)`. A phase logs "<stage>: <name> in X s" and,
while a recorder is active (`recording()`: the pipeline's, or a worker's that it sends back), adds
the figure to it. The stage label is the one set by `stage(...)` around the call (the pipeline
sets it per stage, stage entry points with `in_stage`), so code shared by stages (the sandbox
pool, the embedder) is labelled by whoever called it.

Phases measured in another process (a Ray task, a Tune trial, a Train worker) travel back as
plain data and are added with `record` or `Timings.merge`. Figures only: nothing here changes
what a stage does, and no test asserts a duration.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Phase:
    stage: str
    name: str
    seconds: float
    unit: str | None = None
    """What the phase was paid for when a stage pays it several times (an expert run, a solver)."""


@dataclass
class Timings:
    """Phases and stage totals, in the order they happened; safe to add to from several threads."""

    phases: list[Phase] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, item: Phase) -> None:
        with self._lock:
            self.phases.append(item)

    def total(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.totals[stage] = seconds

    def merge(self, other: Timings | dict[str, Any], unit: str | None = None) -> None:
        """Add another recorder's phases (a worker's, sent back as `to_json()`), `unit` filling theirs."""
        other = other if isinstance(other, Timings) else Timings.from_json(other)
        for p in other.phases:
            self.add(Phase(p.stage, p.name, p.seconds, p.unit or unit))

    def stages(self) -> list[str]:
        """Every stage named by a phase or a total, first seen first."""
        return list(dict.fromkeys([*(p.stage for p in self.phases), *self.totals]))

    def rows(self) -> list[dict[str, Any]]:
        """One row per (stage, phase name): how often it was paid, median, max and sum of its seconds;
        then the stage's total (phase None) when one was recorded."""
        rows: list[dict[str, Any]] = []
        for stage in self.stages():
            by_name: dict[str, list[float]] = {}
            for p in self.phases:
                if p.stage == stage:
                    by_name.setdefault(p.name, []).append(p.seconds)
            for name, seconds in by_name.items():
                rows.append({"stage": stage, "phase": name, "n": len(seconds), "median_s": statistics.median(seconds),
                             "max_s": max(seconds), "sum_s": sum(seconds)})
            if stage in self.totals:
                rows.append({"stage": stage, "phase": None, "n": 1, "median_s": self.totals[stage],
                             "max_s": self.totals[stage], "sum_s": self.totals[stage]})
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "stages": {
                stage: {
                    "total_s": _rounded(self.totals.get(stage)),
                    "phases": [
                        {"name": p.name, "seconds": _rounded(p.seconds), "unit": p.unit}
                        for p in self.phases if p.stage == stage
                    ],
                }
                for stage in self.stages()
            }
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Timings:
        out = cls()
        for stage, body in data.get("stages", {}).items():
            for p in body.get("phases", []):
                out.add(Phase(stage, p["name"], float(p["seconds"]), p.get("unit")))
            if body.get("total_s") is not None:
                out.total(stage, float(body["total_s"]))
        return out


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


_recorders: list[Timings] = []
_stages: list[str] = []
_state_lock = threading.Lock()


def current_stage() -> str | None:
    return _stages[-1] if _stages else None


@contextlib.contextmanager
def recording(timings: Timings | None = None) -> Iterator[Timings]:
    """Phases of this process go to `timings` (a new recorder by default) until the block ends."""
    timings = timings if timings is not None else Timings()
    with _state_lock:
        _recorders.append(timings)
    try:
        yield timings
    finally:
        with _state_lock:
            _recorders.remove(timings)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Phases inside the block are labelled `name` (unless an enclosing block already named one)."""
    with _state_lock:
        _stages.append(current_stage() or name)
    try:
        yield
    finally:
        with _state_lock:
            _stages.pop()


def in_stage(name: str) -> Callable[[F], F]:
    """Decorator form of `stage`, for a stage's entry points (a CLI command's logs name the stage too)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            with stage(name):
                return fn(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


def record(name: str, seconds: float, unit: str | None = None, stage_name: str | None = None) -> Phase:
    """Log and keep a figure measured elsewhere (a worker's report); returns it."""
    item = Phase(stage_name or current_stage() or "-", name, float(seconds), unit)
    log.info("%s: %s%s in %.2f s", item.stage, name, f" ({unit})" if unit else "", item.seconds)
    with _state_lock:
        active = _recorders[-1] if _recorders else None
    if active is not None:
        active.add(item)
    return item


def merge(data: Timings | dict[str, Any], unit: str | None = None) -> None:
    """Log and keep the phases another process recorded (sent back as `Timings.to_json()`);
    `unit` names what they were paid for when they do not say."""
    other = data if isinstance(data, Timings) else Timings.from_json(data)
    for p in other.phases:
        record(p.name, p.seconds, unit=p.unit or unit, stage_name=p.stage)


@contextlib.contextmanager
def phase(name: str, unit: str | None = None) -> Iterator[None]:
    """Time the block; log and keep the figure (also when the block raises: a failed start-up cost as much)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        record(name, time.perf_counter() - started, unit)
