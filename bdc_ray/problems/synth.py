"""The synthetic heterogeneous task suite: what tiny CPU models learn from and are judged on.

Six families (FAMILIES) that differ in wording, solution style and difficulty, so that the
pipeline has something to disentangle and route (notes/TINY_MODELS.md: per-family pass rates
of one model range from 0% to 92%). Each task has a semantic key, family + structure +
constants; names, phrasings, solution style and test inputs vary freely under one key.

Splits are decided on keys, never on tasks, so a held-out task cannot be a renamed training
task:
- "heldout": structures seen in training with constants held out of training. A quarter of
  each structure's constant tuples (ranked by a SHA-256 of the key, so every seed holds out
  the same keys) never appear in training; structures with fewer than four stay training-only.
- "heldout_comp": structures each family names as never trained (a known operation in a new
  combination), to measure compositional generalisation.

Every task is drawn from its own `random.Random` seeded by (seed, family, split, index), so a
task depends on nothing but its id: the same config gives byte-identical problems anywhere, and
a larger config extends a smaller one instead of reshuffling it.

A task's training text is THE prompt format (problems/prompt_format.py): `format_prompt` is what
precedes the model's output, `format_target` what it must produce (its thoughts as `#` comments,
then its first reference program).
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from statistics import mean
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bdc_ray.problems.prompt_format import prompt_text, response_text
from bdc_ray.problems.synth_families import SPECS
from bdc_ray.problems.synth_families.base import Constants, Structure
from bdc_ray.problems.types import Problem

FAMILIES: tuple[str, ...] = tuple(SPECS)

Split = Literal["train", "heldout", "heldout_comp"]
SPLITS: tuple[Split, ...] = ("train", "heldout", "heldout_comp")

_HELDOUT_SHARE = 4
"""One constant tuple in this many is held out of training (only for structures with >= this many)."""


class SynthConfig(BaseModel):
    """How many tasks of each family to generate, and from which seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(0, description="Seed of every random choice; the same config gives byte-identical problems.")
    train_per_family: int = Field(200, ge=0, description="Training tasks per family.")
    heldout_per_family: int = Field(
        20, ge=0, description="Held-out tasks per family: trained structures with constants never trained on."
    )
    heldout_comp_per_family: int = Field(
        10, ge=0, description="Compositional held-out tasks per family: structures never trained on."
    )
    families: list[str] | None = Field(
        None, description=f"Families to generate (default: all of {', '.join(FAMILIES)})."
    )

    @field_validator("families")
    @classmethod
    def _known_families(cls, families: list[str] | None) -> list[str] | None:
        if families is None:
            return None
        unknown = [name for name in families if name not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown synthetic families {unknown}; known: {list(FAMILIES)}")
        if not families:
            raise ValueError("families must name at least one family (None means all)")
        if len(set(families)) != len(families):
            raise ValueError(f"families lists a family twice: {families}")
        return families


class Suite(BaseModel):
    """The generated problems, one list per split, grouped by family in FAMILIES order."""

    model_config = ConfigDict(extra="forbid")

    config: SynthConfig
    train: list[Problem]
    heldout: list[Problem]
    heldout_comp: list[Problem]


def semantic_key(family: str, structure: Structure, constants: Constants) -> str:
    """`family|op+op|[constants]`: what a task asks, regardless of names, wording and tests."""
    return f"{family}|{'+'.join(structure)}|{json.dumps(constants, separators=(',', ':'))}"


def _rank(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@functools.cache
def _pools(family: str) -> dict[Split, list[tuple[Structure, list[Constants]]]]:
    """For each split, the structures it may draw and each structure's allowed constants."""
    spec = SPECS[family]
    pools: dict[Split, list[tuple[Structure, list[Constants]]]] = {split: [] for split in SPLITS}
    for structure in spec.structures:
        every = spec.constants(structure)
        if not every:
            raise ValueError(f"{family} structure {structure} accepts no constants")
        if structure in spec.comp_heldout:
            pools["heldout_comp"].append((structure, every))
            continue
        ranked = sorted(every, key=lambda c: _rank(semantic_key(family, structure, c)))
        held = set(ranked[: len(every) // _HELDOUT_SHARE])
        pools["train"].append((structure, [c for c in every if c not in held]))
        if held:
            pools["heldout"].append((structure, [c for c in every if c in held]))
    return pools


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _problem(family: str, split: Split, seed: int, index: int) -> Problem:
    rng = random.Random(f"bdc-synth:{seed}:{family}:{split}:{index}")
    structure, allowed = rng.choice(_pools(family)[split])
    constants = rng.choice(allowed)
    draft = SPECS[family].draft(rng, structure, constants)
    return Problem(
        id=f"synth/{family}/{split}/{index:06d}",
        source="synthetic",
        prompt=draft.prompt,
        public_tests=list(draft.public_tests),
        hidden_tests=list(draft.hidden_tests),
        entry_point=draft.entry_point,
        completion_mode="program",
        reference_solutions=[draft.code],
        family=family,
        thoughts=list(draft.thoughts),
        metadata={
            "key": semantic_key(family, structure, constants),
            "split": split,
            "structure": "+".join(structure),
            "constants": _jsonable(constants),
            "phrasing": draft.phrasing,
            "style": draft.style,
            "seed": seed,
        },
    )


def generate_suite(config: SynthConfig) -> Suite:
    """Generate every split of every selected family (see the module docstring for the rules)."""
    chosen = [name for name in FAMILIES if config.families is None or name in config.families]
    sizes = {
        "train": config.train_per_family,
        "heldout": config.heldout_per_family,
        "heldout_comp": config.heldout_comp_per_family,
    }
    splits = {
        split: [_problem(family, split, config.seed, i) for family in chosen for i in range(sizes[split])]
        for split in SPLITS
    }
    return Suite(config=config, **splits)


def format_prompt(problem: Problem) -> str:
    """What precedes the model's output, at training and at generation time alike."""
    return prompt_text(problem.prompt)


def format_target(problem: Problem) -> str:
    """What the model must produce: the thoughts, then the first reference program."""
    if not problem.reference_solutions:
        raise ValueError(f"problem {problem.id} has no reference solution to train on")
    return response_text(problem.thoughts, problem.reference_solutions[0])


def training_text(problem: Problem) -> str:
    """Prompt and target in the one fixed format; mask `len(format_prompt(p))` chars for the loss."""
    return format_prompt(problem) + format_target(problem)


def length_stats(problems: Sequence[Problem]) -> dict[str, dict[str, float]]:
    """Characters of `training_text` per family (max and mean), to check against a model's context."""
    lengths: dict[str, list[int]] = {}
    for problem in problems:
        lengths.setdefault(problem.family or "", []).append(len(training_text(problem)))
    return {family: {"max": max(ls), "mean": round(mean(ls), 1)} for family, ls in lengths.items()}
