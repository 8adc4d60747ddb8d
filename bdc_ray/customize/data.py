"""The hypernetwork's training data: SFT rows -> token ids with the prompt masked, plus the text to route on.

Every example carries two things taken from the same row: the token sequence the loss is
computed on, in the ONE prompt format of the experts and of inference
(bdc_ray.artifacts.sft), and the problem statement the routing features are computed
from (the same text a request brings at inference).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bdc_ray.artifacts.sft import SFTRow, prompt_response
from bdc_ray.training import encode_pairs


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
    expert_clusters: list[int]
    embedder: str
    centroids: np.ndarray
    train_rows: list[SFTRow]
    train_features: np.ndarray
    val_rows: list[SFTRow]
    val_features: np.ndarray
    context: int | None = None


def split_rows(rows: Sequence[SFTRow], val_fraction: float, seed: int) -> tuple[list[SFTRow], list[SFTRow]]:
    """(train, validation) by a hash of the problem id: all rows of a problem land on one side,
    so validation loss measures problems the router never saw."""
    def bucket(problem_id: str) -> float:
        digest = hashlib.sha256(f"bdc-customize-val:{seed}:{problem_id}".encode()).hexdigest()
        return int(digest[:12], 16) / 16**12

    train = [r for r in rows if bucket(r.problem_id) >= val_fraction]
    val = [r for r in rows if bucket(r.problem_id) < val_fraction]
    if not val or not train:
        ids = sorted({r.problem_id for r in rows}, key=bucket)
        if len(ids) < 2:
            raise ValueError(f"need rows of at least 2 problems for a train/validation split, got {len(ids)}")
        held = set(ids[: max(1, round(len(ids) * val_fraction))])
        train = [r for r in rows if r.problem_id not in held]
        val = [r for r in rows if r.problem_id in held]
    return train, val


def encode_rows(rows: Sequence[SFTRow], tokenizer, context: int) -> list[RoutedExample]:
    """Each row as sft_data encodes it (loss on the response and <eos>); rows longer than
    `context` are dropped, and every kept example remembers which row it came from."""
    examples = []
    for index, row in enumerate(rows):
        for example in encode_pairs(tokenizer, [prompt_response(row)], context):
            examples.append(RoutedExample(row=index, problem_id=row.problem_id, ids=example.ids, labels=example.labels))
    return examples
