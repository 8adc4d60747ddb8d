"""The synthetic heterogeneous task suite: what tiny CPU models learn from and are judged on.

Six families (FAMILIES, the default) that differ in wording, solution style and difficulty, so
that the pipeline has something to disentangle and route (notes/TINY_MODELS.md: per-family pass
rates of one model range from 0% to 92%), and multi-part families (MULTI_PART_FAMILIES, generated
only when named) where a plan decides success and the public tests give partial credit, one or
more per part: what a tree search can exploit and best-of-N cannot. Each task has a semantic
key, family + structure + constants; names, phrasings, solution style and test inputs vary
freely under one key.

Splits are decided on keys, never on tasks, so a held-out task cannot be a renamed training
task:
- "heldout": structures seen in training with constants held out of training. A quarter of
  each structure's constant tuples (ranked by a SHA-256 of the key, so every seed holds out
  the same keys) never appear in training; structures with fewer than four stay training-only.
  A family too large to enumerate (FamilySpec.sample) holds out the keys whose SHA-256 is 0
  modulo four: the same share, decided by the same hash, without listing the constants.
- "heldout_comp": structures each family names as never trained (a known operation in a new
  combination), to measure compositional generalisation.

Every task is drawn from its own `random.Random` seeded by (seed, family, split, index), so a
task depends on nothing but its id: the same config gives byte-identical problems anywhere, and
a larger config extends a smaller one instead of reshuffling it. A draw whose inputs give no
discriminating public tests is drawn again from the next seed of the same id (other structure,
constants and inputs), so a suite of any size and seed generates; a task that never needed a
redraw is exactly what it was before redraws existed.

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
from bdc_ray.problems.synth_families.base import Constants, Draft, NoDiscriminatingTests, Structure
from bdc_ray.problems.types import Problem

MULTI_PART_FAMILIES: tuple[str, ...] = ("multibranch", "module")
"""Generated only when `SynthConfig.families` names them, so default suites (and every tiny model
trained on one) are what they were before these families existed."""

FAMILIES: tuple[str, ...] = tuple(name for name in SPECS if name not in MULTI_PART_FAMILIES)
"""The default families."""

ALL_FAMILIES: tuple[str, ...] = tuple(SPECS)

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
        None,
        description=f"Families to generate (default: {', '.join(FAMILIES)}; multi-part families only when named: "
        f"{', '.join(MULTI_PART_FAMILIES)}).",
    )

    @field_validator("families")
    @classmethod
    def _known_families(cls, families: list[str] | None) -> list[str] | None:
        if families is None:
            return None
        unknown = [name for name in families if name not in ALL_FAMILIES]
        if unknown:
            raise ValueError(f"unknown synthetic families {unknown}; known: {list(ALL_FAMILIES)}")
        if not families:
            raise ValueError("families must name at least one family (None means all)")
        if len(set(families)) != len(families):
            raise ValueError(f"families lists a family twice: {families}")
        return families


class Suite(BaseModel):
    """The generated problems, one list per split, grouped by family in ALL_FAMILIES order."""

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


def _held_by_hash(key: str) -> bool:
    """The hold-out rule of a sampled family: one key in _HELDOUT_SHARE, by its SHA-256."""
    return int(_rank(key), 16) % _HELDOUT_SHARE == 0


@functools.cache
def _pools(family: str) -> dict[Split, list[tuple[Structure, list[Constants]]]]:
    """For each split, the structures it may draw and each structure's allowed constants."""
    spec = SPECS[family]
    if spec.constants is None:
        raise ValueError(f"{family} samples its constants: it has no enumerated pools")
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


_REDRAWS = 64
"""Draws of one task id before giving up. The worst key measured (count `words exactly 4`) gave
no discriminating public set in 0.95% of draws (2,000 draws), so 64 draws never run out in practice."""


def _trained(family: str) -> list[tuple[Structure, list[Constants]]]:
    return _pools(family)["train"]


_KEY_DRAWS = 200
"""Constant draws of a sampled family until one falls in the split (a quarter of keys are held out)."""


def _choose(family: str, split: Split, rng: random.Random) -> tuple[Structure, Constants]:
    """A structure and constants of `split`: from the enumerated pools, or sampled until the
    key's hash puts it in `split` (heldout_comp structures are held out whatever their key)."""
    spec = SPECS[family]
    if spec.sample is None:
        structure, allowed = rng.choice(_pools(family)[split])
        return structure, rng.choice(allowed)
    comp = split == "heldout_comp"
    structure = rng.choice([s for s in spec.structures if (s in spec.comp_heldout) == comp])
    for _ in range(_KEY_DRAWS):
        constants = spec.sample(rng, structure, _trained)
        if comp or _held_by_hash(semantic_key(family, structure, constants)) == (split == "heldout"):
            return structure, constants
    raise RuntimeError(f"{family} {structure}: {_KEY_DRAWS} constant draws and none in split {split}")


def _draw(family: str, split: Split, seed: int, index: int) -> tuple[Structure, Constants, Draft, int]:
    """The task of one id: the first draw (structure, constants, then inputs) that yields
    discriminating public tests. Draw 0 uses the id's own seed, so it is the pre-redraw task."""
    for attempt in range(_REDRAWS):
        suffix = f":redraw{attempt}" if attempt else ""
        rng = random.Random(f"bdc-synth:{seed}:{family}:{split}:{index}{suffix}")
        try:
            structure, constants = _choose(family, split, rng)
            return structure, constants, SPECS[family].draft(rng, structure, constants), attempt
        except NoDiscriminatingTests:
            continue
    raise RuntimeError(f"{family} {split} task {index} (seed {seed}): {_REDRAWS} draws without discriminating tests")


def _problem(family: str, split: Split, seed: int, index: int) -> Problem:
    structure, constants, draft, redraws = _draw(family, split, seed, index)
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
            **({"redraws": redraws} if redraws else {}),
            **({"public_parts": list(draft.public_parts), "hidden_parts": list(draft.hidden_parts)} if draft.public_parts else {}),
        },
    )


def generate_suite(config: SynthConfig) -> Suite:
    """Generate every split of every selected family (see the module docstring for the rules)."""
    chosen = [name for name in ALL_FAMILIES if name in (config.families or FAMILIES)]
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
