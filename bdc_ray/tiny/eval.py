"""Held-out pass@1 and pass@k of a saved tiny model, per family, through the real sandbox.

The model is loaded by path with `TransformersLLM` (as every consumer loads it) and its whole
output after the prompt is the program: thoughts are `#` comments, so nothing is parsed out.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from pydantic import BaseModel, ConfigDict, Field

from bdc_ray.eval.evaluate import Sample, evaluate_samples
from bdc_ray.eval.passk import pass_at_k
from bdc_ray.llm.base import SamplingParams
from bdc_ray.problems.prompt_format import prompt_text
from bdc_ray.problems.types import Problem
from bdc_ray.sandbox import Sandbox, SandboxLimits
from bdc_ray.training import worker_device


class Scores(BaseModel):
    """Pass rates over a set of problems, each problem weighing the same."""

    model_config = ConfigDict(extra="forbid")

    problems: int
    greedy_pass_at_1: float = Field(description="Share of problems whose greedy program passes every test.")
    pass_at_k: float | None = Field(None, description="Unbiased pass@k over the sampled programs (k = samples).")
    sampled_pass_at_1: float | None = Field(None, description="Unbiased pass@1 of the sampled programs.")


class TinyEval(BaseModel):
    """Scores of one model on one problem set, with the cost of getting them."""

    model_config = ConfigDict(extra="forbid")

    model: str
    k: int = Field(description="Samples per problem behind pass_at_k (0: none drawn).")
    temperature: float
    with_thoughts: bool
    overall: Scores
    by_family: dict[str, Scores]
    generated_tokens: int
    generation_s: float
    sandbox_s: float


def tiny_prompt(problem: Problem, with_thoughts: bool = False) -> str:
    """The prompt a tiny model was trained to continue; with the problem's own thoughts appended,
    the model writes only the code (the thought-to-solution step)."""
    return prompt_text(problem.prompt, problem.thoughts if with_thoughts else ())


def evaluate_tiny(
    model_path: str | Path,
    problems: Sequence[Problem],
    *,
    samples: int = 10,
    temperature: float = 0.8,
    seed: int = 0,
    with_thoughts: bool = False,
    max_new_tokens: int = 160,
    batch_size: int = 16,
    threads: int | None = 1,
    sandbox_workers: int = 2,
    limits: SandboxLimits | None = None,
) -> TinyEval:
    """Greedy pass@1 and, with `samples` > 0, pass@`samples` at `temperature`, on all tests
    (public and hidden) of each problem.

    Generation and execution run one after the other, never together, so they do not compete
    for the two cores. The default `limits` give each test 2 s, plenty for these programs, so a
    looping sample costs little. `max_new_tokens` 160 covers the longest reference (about 125
    tokens) and keeps the longest prompt plus output inside the 256-token context.
    """
    from bdc_ray.llm.hf_backend import TransformersLLM

    llm = TransformersLLM(str(model_path), device=str(worker_device()), threads=threads, max_batch_size=batch_size)
    prompts = [tiny_prompt(p, with_thoughts) for p in problems]
    greedy, greedy_stats = llm.generate_with_stats(prompts, SamplingParams(max_new_tokens=max_new_tokens))
    stats = greedy_stats
    sampled: list[list[str]] = [[] for _ in problems]
    if samples:
        sampled, sample_stats = llm.generate_with_stats(
            prompts, SamplingParams(n=samples, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
        )
        stats = stats + sample_stats

    jobs = [Sample(task_id=p.id, completion=text, greedy=True) for p, texts in zip(problems, greedy) for text in texts]
    jobs += [
        Sample(task_id=p.id, completion=text, greedy=False) for p, texts in zip(problems, sampled) for text in texts
    ]
    started = time.monotonic()
    with Sandbox(workers=sandbox_workers, limits=limits or SandboxLimits(time_s=2.0, program_time_s=20.0)) as sandbox:
        records, errors = evaluate_samples(problems, jobs, sandbox.run_many, tests="all")
    sandbox_s = time.monotonic() - started
    if errors:
        raise ValueError(f"evaluation lost samples: {errors[:3]}")

    outcomes: dict[str, dict[str, list[bool]]] = defaultdict(lambda: {"greedy": [], "sampled": []})
    for sample, record in zip(jobs, records, strict=True):
        outcomes[sample.task_id]["greedy" if sample.greedy else "sampled"].append(record["status"] == "passed")
    families: dict[str, list[str]] = defaultdict(list)
    for p in problems:
        families[p.family or "none"].append(p.id)
    return TinyEval(
        model=str(model_path),
        k=samples,
        temperature=temperature,
        with_thoughts=with_thoughts,
        overall=_scores([p.id for p in problems], outcomes, samples),
        by_family={family: _scores(ids, outcomes, samples) for family, ids in families.items()},
        generated_tokens=stats.completion_tokens,
        generation_s=round(stats.seconds, 2),
        sandbox_s=round(sandbox_s, 2),
    )


def _scores(ids: list[str], outcomes: dict[str, dict[str, list[bool]]], k: int) -> Scores:
    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    scores = Scores(problems=len(ids), greedy_pass_at_1=mean([float(outcomes[i]["greedy"][0]) for i in ids]))
    if k:
        counts = [(len(outcomes[i]["sampled"]), sum(outcomes[i]["sampled"])) for i in ids]
        scores.pass_at_k = mean([pass_at_k(n, c, k) for n, c in counts])
        scores.sampled_pass_at_1 = mean([pass_at_k(n, c, 1) for n, c in counts])
    return scores
