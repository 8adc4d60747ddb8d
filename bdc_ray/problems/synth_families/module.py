"""Module: two or three small functions in one program, each a task of another family.

A multi-part task: the plan is one thought line per function (that function's own thoughts,
joined), and every function keeps its own public tests, so a program with some functions right
passes those functions' tests (partial credit) and two agents that are each right on different
functions can be combined by a search (one's first line continued by the other), which no single
sample and so no best-of-N can do.

Parts come from the call-style families (io programs read stdin and cannot share one program).
Each part is drawn from its family's TRAINING pool (its structure and constants), so a module
never carries a key another family holds out; the module's own key (which parts, in which
order, with which constants) is held out by hash (FamilySpec.sample). Compositional held-out
modules put families in an order never trained (`string` before `arith`, ...), each family
at each position still seen in training.
"""

from __future__ import annotations

import random
from itertools import permutations

from bdc_ray.problems.synth_families import arith, branching, counting, lists, strings
from bdc_ray.problems.synth_families.base import (
    Constants, Draft, FamilySpec, NoDiscriminatingTests, Structure, TrainedPools,
)

_PARTS: dict[str, FamilySpec] = {spec.name: spec for spec in (arith.SPEC, strings.SPEC, lists.SPEC, counting.SPEC, branching.SPEC)}

STRUCTURES: tuple[Structure, ...] = tuple(permutations(_PARTS, 2))

COMP_HELDOUT = frozenset({("string", "arith"), ("count", "list"), ("branch", "string"), ("list", "count")})


def sample(rng: random.Random, structure: Structure, trained: TrainedPools) -> Constants:
    """Per part, a structure and constants from its family's training pool: ((ops, consts), ...)."""
    parts = []
    for family in structure:
        part_structure, allowed = rng.choice(trained(family))
        parts.append((part_structure, rng.choice(allowed)))
    return tuple(parts)


_COUNT_WORDS = {2: "two", 3: "three"}

_PROMPTS = (
    "Write {n} Python functions in one program.\n{parts}",
    "One program with {n} functions:\n{parts}",
    "Implement these {n} functions in a single Python file.\n{parts}",
)

_NAME_TRIES = 20


def _parts(rng: random.Random, structure: Structure, consts: Constants) -> list[Draft]:
    """Each part's own draft, drawn again while its function name repeats an earlier part's."""
    drafts: list[Draft] = []
    for family, (part_structure, part_consts) in zip(structure, consts):
        for _ in range(_NAME_TRIES):
            part = _PARTS[family].draft(rng, tuple(part_structure), tuple(part_consts))
            if part.entry_point not in {d.entry_point for d in drafts}:
                drafts.append(part)
                break
        else:
            raise NoDiscriminatingTests(f"module {structure}: no free function name in {_NAME_TRIES} draws")
    return drafts


def draft(rng: random.Random, structure: Structure, consts: Constants) -> Draft:
    parts = _parts(rng, structure, consts)
    phrasing = rng.randrange(len(_PROMPTS))
    listed = "\n".join(f"{i}. {part.prompt}" for i, part in enumerate(parts, 1))
    prompt = _PROMPTS[phrasing].format(n=_COUNT_WORDS[len(parts)], parts=listed)
    thoughts = tuple(f"`{part.entry_point}`: {' '.join(part.thoughts)}" for part in parts)
    code = "\n".join(part.code for part in parts)
    labels = [f"{i}:{family}" for i, family in enumerate(structure, 1)]
    return Draft(
        prompt,
        thoughts,
        code,
        None,
        tuple(t for part in parts for t in part.public_tests),
        tuple(t for part in parts for t in part.hidden_tests),
        phrasing,
        "+".join(part.style for part in parts),
        public_parts=tuple(label for label, part in zip(labels, parts) for _ in part.public_tests),
        hidden_parts=tuple(label for label, part in zip(labels, parts) for _ in part.hidden_tests),
    )


SPEC = FamilySpec("module", STRUCTURES, COMP_HELDOUT, None, draft, (), sample=sample)
