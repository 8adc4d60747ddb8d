"""SFT rows (`boost/sft.jsonl`): what Boost verified, as the training pairs every later stage uses.

One row per (problem, task): `t2c` (problem -> thoughts as `#` comments, then the code: one
runnable program) and, when the search found thoughts, `p2t` (problem -> the thoughts alone).
`prompt_response` turns a row into the one prompt format (problems/prompt_format.py), so experts,
the hypernetwork and every solver see the same text at training and at inference.
"""

from __future__ import annotations

from typing import Iterable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from bdc_ray import storage
from bdc_ray.problems.prompt_format import prompt_text, response_text
from bdc_ray.problems.types import Problem


class SFTProblem(BaseModel):
    """The problem part of a row: all that clustering reads (other fields are not looked at)."""

    model_config = ConfigDict(extra="ignore")

    problem_id: str
    family: str | None = None
    problem: str

    @field_validator("problem")
    @classmethod
    def _stated(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty problem statement")
        return value


class SFTRow(SFTProblem):
    model_config = ConfigDict(extra="forbid")

    agent: str | None = None
    """The agent whose program was verified ('reference' for rows made from a suite's solutions)."""
    task: Literal["p2t", "t2c"]
    thoughts: list[str] = []
    code: str | None = None


def prompt_response(row: SFTRow) -> tuple[str, str]:
    """(prompt, response) of one SFT row.

    t2c: the problem -> its thoughts as `#` comments, then the code (one runnable program).
    p2t: the problem -> the thoughts alone.
    """
    if row.task == "t2c":
        if not row.code:
            raise ValueError(f"t2c row of {row.problem_id!r} has no code")
        return prompt_text(row.problem), response_text(row.thoughts, row.code)
    if row.task == "p2t":
        if not row.thoughts:
            raise ValueError(f"p2t row of {row.problem_id!r} has no thoughts")
        return prompt_text(row.problem), response_text(row.thoughts)
    raise ValueError(f"SFT row of {row.problem_id!r} has unknown task {row.task!r} (expected 't2c' or 'p2t')")


def training_rows(rows: Iterable[SFTRow]) -> list[SFTRow]:
    """The rows to train a completion model on: every t2c row, and p2t rows only for problems
    without one (a t2c response starts with the same thoughts, so its p2t row adds nothing)."""
    rows = list(rows)
    with_code = {r.problem_id for r in rows if r.task == "t2c"}
    return [r for r in rows if r.task == "t2c" or r.problem_id not in with_code]


def problem_rows(problems: Iterable[Problem], agent: str = "reference") -> list[SFTRow]:
    """t2c rows from problems with reference solutions and thoughts (the synthetic suite's train
    split): for when a benchmark or a test needs more data than a Boost run gives."""
    rows = []
    for p in problems:
        if not p.reference_solutions:
            raise ValueError(f"problem {p.id} has no reference solution to make an SFT row from")
        rows.append(SFTRow(problem_id=p.id, family=p.family, problem=p.prompt, agent=agent, task="t2c",
                           thoughts=list(p.thoughts), code=p.reference_solutions[0]))
    return rows


def write_sft_rows(path: str, rows: Iterable[SFTRow]) -> int:
    """All rows in one atomic write; returns how many."""
    return storage.write_jsonl_atomic(path, (r.model_dump(mode="json") for r in rows))


def read_sft_rows(path: str) -> list[SFTRow]:
    """Every row of an sft.jsonl; a malformed one is a ValueError naming its line."""
    return _read(path, SFTRow)


def read_sft_problems(path: str) -> list[SFTProblem]:
    """The problem part of every row (clustering needs no more, and accepts rows of any task)."""
    return _read(path, SFTProblem)


def _read(path: str, model: type[SFTProblem]) -> Sequence:
    if not storage.exists(path):
        raise FileNotFoundError(f"SFT file not found: {path}")
    try:
        records = list(storage.read_jsonl(path))
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSONL: {err}") from err
    rows = []
    for i, record in enumerate(records, start=1):
        try:
            rows.append(model.model_validate(record))
        except ValidationError as err:
            first = err.errors()[0]
            if not first["loc"] or first["loc"][0] in ("problem_id", "problem"):
                raise ValueError(f"{path} row {i}: needs a string 'problem_id' and a non-empty 'problem'") from None
            raise ValueError(f"{path} row {i}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    return rows
