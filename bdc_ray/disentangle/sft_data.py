"""SFT rows (boost/sft.jsonl) as prompt/response pairs and as token ids with the prompt masked.

`prompt_response` is the ONE prompt format of everything trained or served after Boost: experts,
the hypernetwork and Serve all call it, so a model never sees a prompt at inference that differs
from the prompts it was trained on. For completion-style (tiny) models it is exactly the
synthetic suite's format (`format_prompt` + `format_thoughts` + code), which is what their base
weights were trained on.

Tokenization follows bdc_ray.llm.tiny_data: prompt and response are tokenized separately and
concatenated, so the prompt's ids at training time are the ids the generator feeds the model
(a BPE merge across the boundary would otherwise teach a prompt ending never seen at inference).
Batching reuses tiny_data's length bucketing, so CPU time is not spent on padding.
"""

from __future__ import annotations

from typing import Any, Iterable

from bdc_ray.problems.prompt_format import prompt_text, response_text
from bdc_ray.problems.types import Problem

Row = dict[str, Any]


def prompt_response(row: Row) -> tuple[str, str]:
    """(prompt, response) of one SFT row.

    t2c: the problem -> its thoughts as `#` comments, then the code (one runnable program).
    p2t: the problem -> the thoughts alone.
    """
    task = row.get("task")
    thoughts = row.get("thoughts") or []
    if task == "t2c":
        if not row.get("code"):
            raise ValueError(f"t2c row of {row.get('problem_id')!r} has no code")
        return prompt_text(row["problem"]), response_text(thoughts, row["code"])
    if task == "p2t":
        if not thoughts:
            raise ValueError(f"p2t row of {row.get('problem_id')!r} has no thoughts")
        return prompt_text(row["problem"]), response_text(thoughts)
    raise ValueError(f"SFT row of {row.get('problem_id')!r} has unknown task {task!r} (expected 't2c' or 'p2t')")


def training_rows(rows: Iterable[Row]) -> list[Row]:
    """The rows to train a completion model on: every t2c row, and p2t rows only for problems
    without one (a t2c response starts with the same thoughts, so its p2t row adds nothing)."""
    rows = list(rows)
    with_code = {r["problem_id"] for r in rows if r.get("task") == "t2c"}
    return [r for r in rows if r.get("task") == "t2c" or r["problem_id"] not in with_code]


def problem_rows(problems: Iterable[Problem], agent: str = "reference") -> list[Row]:
    """t2c rows from problems with reference solutions and thoughts (the synthetic suite's train
    split), in boost/sft.jsonl's shape: for when a benchmark needs more data than a Boost run gives."""
    rows = []
    for p in problems:
        if not p.reference_solutions:
            raise ValueError(f"problem {p.id} has no reference solution to make an SFT row from")
        rows.append(
            {
                "problem_id": p.id,
                "family": p.family,
                "problem": p.prompt,
                "agent": agent,
                "task": "t2c",
                "thoughts": list(p.thoughts),
                "code": p.reference_solutions[0],
            }
        )
    return rows
