"""The hypernetwork's training data: SFT rows -> token ids with the prompt masked, plus the text to route on.

Every example carries two things taken from the same row: the token sequence the loss is
computed on, in the ONE prompt format the experts were trained with and the solver generates
with, and the problem statement the routing features are computed from (the same text a
request brings at inference).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bdc_ray.llm.tiny_data import IGNORE
from bdc_ray.problems.synth import SOLUTION_HEADER, TASK_HEADER, format_thoughts
from bdc_ray.problems.types import Problem


def prompt_of(problem: str) -> str:
    """What precedes the model's output for a problem statement, at training and at inference."""
    return f"{TASK_HEADER}{problem}\n{SOLUTION_HEADER}"


def prompt_response(row: dict[str, Any]) -> tuple[str, str]:
    """A t2c row as (prompt, response): thoughts as `#` lines, then the code."""
    return prompt_of(row["problem"]), format_thoughts(row["thoughts"]) + row["code"]


@dataclass(frozen=True)
class RoutedExample:
    row: int
    """Index of its row in the encoded sequence (and so of the row's routing features)."""
    problem_id: str
    ids: list[int]
    labels: list[int]


@dataclass
class TrainingData:
    """Everything a training process needs, picklable (it travels to Ray Tune trials).

    Rows and their routing features are aligned; the features were computed once, by the
    driver, from each row's problem statement.
    """

    base_model: str
    expert_names: list[str]
    expert_paths: list[str]
    embedder: str
    centroids: np.ndarray
    train_rows: list[dict[str, Any]]
    train_features: np.ndarray
    val_rows: list[dict[str, Any]]
    val_features: np.ndarray
    context: int | None = None


def t2c_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that train a completion model: thoughts + code (p2t rows are their prefixes)."""
    return [r for r in rows if r.get("task") == "t2c" and r.get("code")]


def rows_from_problems(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    """Reference solutions (synthetic suite) as the same t2c rows Boost writes."""
    return [
        {"problem_id": p.id, "family": p.family, "problem": p.prompt, "agent": "reference", "task": "t2c",
         "thoughts": list(p.thoughts), "code": p.reference_solutions[0]}
        for p in problems
        if p.reference_solutions
    ]


def split_rows(rows: Sequence[dict[str, Any]], val_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, validation) by a hash of the problem id: all rows of a problem land on one side,
    so validation loss measures problems the router never saw."""
    def bucket(problem_id: str) -> float:
        digest = hashlib.sha256(f"bdc-customize-val:{seed}:{problem_id}".encode()).hexdigest()
        return int(digest[:12], 16) / 16**12

    train = [r for r in rows if bucket(r["problem_id"]) >= val_fraction]
    val = [r for r in rows if bucket(r["problem_id"]) < val_fraction]
    if not val or not train:
        ids = sorted({r["problem_id"] for r in rows}, key=bucket)
        if len(ids) < 2:
            raise ValueError(f"need rows of at least 2 problems for a train/validation split, got {len(ids)}")
        held = set(ids[: max(1, round(len(ids) * val_fraction))])
        train = [r for r in rows if r["problem_id"] not in held]
        val = [r for r in rows if r["problem_id"] in held]
    return train, val


def encode_rows(rows: Sequence[dict[str, Any]], tokenizer, context: int) -> list[RoutedExample]:
    """<bos> prompt response <eos>, loss on response and <eos>; rows longer than `context` are dropped.

    Prompt and response are tokenized apart and concatenated, so the prompt ids are exactly those
    the solver feeds the model at generation time.
    """
    pairs = [prompt_response(r) for r in rows]
    prompts = tokenizer([p for p, _ in pairs], add_special_tokens=True)["input_ids"]
    responses = tokenizer([a for _, a in pairs], add_special_tokens=False)["input_ids"]
    examples = []
    for index, (row, prompt, response) in enumerate(zip(rows, prompts, responses, strict=True)):
        answer = [*response, tokenizer.eos_token_id]
        if len(prompt) + len(answer) <= context:
            examples.append(RoutedExample(
                row=index, problem_id=row["problem_id"], ids=prompt + answer, labels=[IGNORE] * len(prompt) + answer
            ))
    return examples
