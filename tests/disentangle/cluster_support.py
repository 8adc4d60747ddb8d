"""Clustering inputs: the synthetic suite (problem texts with family labels, sft.jsonl rows) and
separated groups of unit vectors with known labels.

Suite problems carry reference thoughts and code, so they make SFT rows of exactly Boost's shape
(bdc_ray/boost/records.py `sft_rows`: a p2t and a t2c row per problem), without running Boost.
"""

from __future__ import annotations

import functools

import numpy as np

from bdc_ray.problems.synth import SynthConfig, generate_suite
from bdc_ray.problems.types import Problem


@functools.cache
def suite_train(per_family: int, seed: int = 0) -> tuple[Problem, ...]:
    config = SynthConfig(seed=seed, train_per_family=per_family, heldout_per_family=0, heldout_comp_per_family=0)
    return tuple(generate_suite(config).train)


@functools.cache
def suite_embeddings(per_family: int, seed: int = 0) -> np.ndarray:
    from bdc_ray.disentangle.embed import embed_texts

    return embed_texts([p.prompt for p in suite_train(per_family, seed)])


def sft_rows_of(problems) -> list[dict]:
    rows = []
    for p in problems:
        base = {"problem_id": p.id, "family": p.family, "problem": p.prompt, "agent": "reference"}
        rows.append({**base, "task": "p2t", "thoughts": list(p.thoughts), "code": None})
        rows.append({**base, "task": "t2c", "thoughts": list(p.thoughts), "code": p.reference_solutions[0]})
    return rows


def blobs(k: int, per: int, dim: int = 32, spread: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k tight groups of unit vectors around random directions, and their group labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    truth = np.repeat(np.arange(k), per)
    x = centres[truth] / np.linalg.norm(centres[truth], axis=1, keepdims=True) + spread * rng.normal(size=(k * per, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), truth


def ids_of(n: int) -> list[str]:
    return [f"p{i}" for i in range(n)]
