"""Load public benchmarks (and the project's own problem files) as :class:`Problem` lists.

Public dumps contain the odd broken record; one bad line should cost that problem, not the
run. So a record that cannot be read is reported with its `file:line` (`file:[index]` in a
JSON array) in a :class:`LoadReport`, logged, and skipped. Every path goes through fsspec, so
`s3://` and `gs://` files load like local ones and `.gz` is decompressed by its suffix.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from contextlib import closing
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Generator, Iterable, Iterator

import fsspec
from fsspec.utils import infer_compression
from pydantic import ValidationError

from bdc_ray import storage
from bdc_ray.problems.formats import apps, bdc, codecontests, humaneval, mbpp
from bdc_ray.problems.formats.common import BadRecord
from bdc_ray.problems.types import Problem

log = logging.getLogger(__name__)

# Detection tries the schemas in this order; bdc comes first because its records also carry
# a `prompt` and an id-like key.
_SCHEMAS: dict[str, ModuleType] = {m.NAME: m for m in (bdc, humaneval, mbpp, apps, codecontests)}
FORMATS: tuple[str, ...] = tuple(_SCHEMAS)


@dataclass(frozen=True)
class LoadError:
    """A skipped record: `line` is the 1-based line of a JSON-lines file, or the 0-based
    index of the record when `in_array` (a JSON array file)."""

    path: str
    line: int
    reason: str
    in_array: bool = False

    @property
    def where(self) -> str:
        return _where(self.path, self.line, self.in_array)

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class LoadReport:
    path: str
    format: str
    loaded: int = 0
    errors: list[LoadError] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.errors)


@dataclass(frozen=True)
class _Entry:
    """One record slot of a file: the parsed value, or why it could not be parsed."""

    line: int
    value: Any = None
    unreadable: str | None = None


def load_problems(path: str | os.PathLike[str], format: str | None = None) -> tuple[list[Problem], LoadReport]:
    """All problems of `path` in the given format (None: detect it) and what was skipped."""
    if format is not None and format not in _SCHEMAS:
        raise ValueError(f"unknown format {format!r}; known formats: {', '.join(FORMATS)}")
    path = os.fspath(path)
    in_array = _is_json_array(path)
    problems: list[Problem] = []
    first_seen: dict[str, str] = {}
    with closing(_entries(path, in_array)) as entries:
        head = _head(entries)
        format = format or _detect(path, head)
        schema = _SCHEMAS[format]
        report = LoadReport(path=path, format=format)
        for entry in itertools.chain(head, entries):
            try:
                problem = _convert(schema, entry)
                if problem.id in first_seen:
                    raise ValueError(f"duplicate id {problem.id!r} (first at {first_seen[problem.id]})")
            except ValueError as err:  # BadRecord and pydantic's ValidationError included
                report.errors.append(LoadError(path, entry.line, _reason(err), in_array))
                log.warning("skipping record %s", report.errors[-1])
                continue
            first_seen[problem.id] = _where(path, entry.line, in_array)
            problems.append(problem)
    report.loaded = len(problems)
    if report.errors:
        log.warning("%s: loaded %d %s problems, skipped %d", path, report.loaded, format, report.skipped)
    return problems, report


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of `path`, from its first JSON-object record; ValueError when unknown."""
    path = os.fspath(path)
    with closing(_entries(path, _is_json_array(path))) as entries:
        return _detect(path, _head(entries))


def read_problems_jsonl(path: str | os.PathLike[str]) -> list[Problem]:
    """Problems from a file this project wrote; any bad record is an error, not a warning.

    These files are our own output, so a record that does not validate means corruption or a
    schema change, and silently dropping problems would skew every later score.
    """
    problems, report = load_problems(path, format=bdc.NAME)
    if report.errors:
        raise ValueError(f"{report.skipped} bad problem records:\n" + "\n".join(map(str, report.errors)))
    return problems


def write_problems_jsonl(path: str | os.PathLike[str], problems: Iterable[Problem]) -> int:
    """Write one `Problem` JSON per line, atomically (see `storage`); returns the count."""
    path = os.fspath(path)
    if infer_compression(path) is not None:
        raise ValueError(f"{path}: problem files are written uncompressed; drop the compression suffix")
    lines = [p.model_dump_json() + "\n" for p in problems]
    storage.write_text_atomic(path, "".join(lines))
    return len(lines)


def _is_json_array(path: str) -> bool:
    """Whether the file is one JSON array rather than JSON lines.

    Decided by the first character, not the suffix: Hugging Face's `to_json` writes JSON
    lines under a `.json` name, while `sanitized-mbpp.json` is an array.
    """
    with fsspec.open(path, "rt", compression="infer", encoding="utf-8-sig") as fh:
        while chunk := fh.read(4096):
            if stripped := chunk.lstrip():
                return stripped.startswith("[")
    return False


def _entries(path: str, in_array: bool) -> Generator[_Entry, None, None]:
    """The file's records in order; JSON lines are streamed, an array is parsed whole."""
    with fsspec.open(path, "rt", compression="infer", encoding="utf-8-sig") as fh:
        if in_array:
            try:
                records = json.load(fh)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: not a valid JSON array: {err}") from None
            yield from (_Entry(i, value) for i, value in enumerate(records))
            return
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield _Entry(lineno, json.loads(line))
            except json.JSONDecodeError as err:
                yield _Entry(lineno, unreadable=f"not valid JSON: {err}")


def _head(entries: Iterator[_Entry]) -> list[_Entry]:
    """Entries up to and including the first JSON object, which decides the format."""
    head = []
    for entry in entries:
        head.append(entry)
        if isinstance(entry.value, dict):
            break
    return head


def _detect(path: str, head: list[_Entry]) -> str:
    if not head or not isinstance(head[-1].value, dict):
        raise ValueError(f"{path}: no JSON object record to detect the format from")
    record = head[-1].value
    name = record_format(record)
    if name is None:
        raise ValueError(
            f"{path}: unknown problem format; first record has keys {sorted(record)}; known formats: {', '.join(FORMATS)}"
        )
    return name


def record_format(record: dict[str, Any]) -> str | None:
    """The schema whose fields `record` has (None: none of them)."""
    return next((name for name, schema in _SCHEMAS.items() if schema.matches(record)), None)


def problem_from_record(record: dict[str, Any]) -> Problem:
    """One record of any known schema, detected from its fields, as a Problem (BadRecord if it cannot be)."""
    name = record_format(record)
    if name is None:
        raise BadRecord(f"the record's keys {sorted(record)[:12]} match none of the known formats: {', '.join(FORMATS)}")
    return _SCHEMAS[name].to_problem(record)


def _convert(schema: ModuleType, entry: _Entry) -> Problem:
    if entry.unreadable is not None:
        raise ValueError(entry.unreadable)
    if not isinstance(entry.value, dict):
        raise ValueError(f"not a JSON object but {type(entry.value).__name__}")
    problem: Problem = schema.to_problem(entry.value)
    return problem


def _where(path: str, line: int, in_array: bool) -> str:
    return f"{path}:[{line}]" if in_array else f"{path}:{line}"


def _reason(err: ValueError) -> str:
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(err)
