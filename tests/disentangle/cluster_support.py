"""The synthetic suite as clustering input: problem texts with family labels, and sft.jsonl rows.

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
