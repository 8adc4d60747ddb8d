"""What every synthetic family shares: the spec it registers, the draft it returns, names, tests.

A family never builds a `Problem` itself: it returns a `Draft`, and `synth.py` alone decides
ids, splits and metadata, so the split rules live in one place. Expected outputs are computed
by each family's own plain-Python semantics, never by running the generated code, so checking
"every reference passes its tests" really checks the code generator against the semantics.

Function and argument names are random; names inside a solution (loop variables, accumulators)
are fixed per family and style, so a tiny model's few minutes of training go into the tasks
rather than into predicting arbitrary local names.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from bdc_ray.problems.types import CallTest, StdioTest

Structure = tuple[str, ...]
"""The shape of a task (which operations, in which order), without its constants."""

Constants = tuple[Any, ...]
"""The constants that instantiate a structure (ints and short strings, JSON-able)."""


class NoDiscriminatingTests(ValueError):
    """The drawn inputs give no discriminating public set (say, `exactly 4` on lists in which no
    word occurs four times): the suite draws the task again instead of weakening its tests."""


@dataclass(frozen=True)
class Draft:
    """One generated task before it is given an id, a split and metadata."""

    prompt: str
    thoughts: tuple[str, ...]
    code: str
    entry_point: str | None
    public_tests: tuple[CallTest | StdioTest, ...]
    hidden_tests: tuple[CallTest | StdioTest, ...]
    phrasing: int
    style: str
    public_parts: tuple[str, ...] = ()
    """Multi-part tasks: which part (a case, a function) each public test exercises, in order."""
    hidden_parts: tuple[str, ...] = ()


TrainedPools = Callable[[str], list[tuple[Structure, list[Constants]]]]
"""A family's trained structures, each with the constants training may use (the suite's split rule)."""


@dataclass(frozen=True)
class FamilySpec:
    """A family as the suite sees it.

    `constants(structure)` enumerates every constant tuple the structure accepts (in a fixed
    order), which is what lets the suite carve held-out constants out of each structure
    deterministically. `comp_heldout` lists structures that never appear in training.

    A family whose constants are too many to enumerate (a multi-part task is a product of its
    parts) gives `sample` instead: one random constant tuple for a structure, drawn with access
    to the other families' trained pools; the suite then holds a key out by its hash alone.
    """

    name: str
    structures: tuple[Structure, ...]
    comp_heldout: frozenset[Structure]
    constants: Callable[[Structure], list[Constants]] | None
    draft: Callable[[random.Random, Structure, Constants], Draft]
    styles: tuple[str, ...]
    sample: Callable[[random.Random, Structure, TrainedPools], Constants] | None = None


_FN_VERBS = ("calc", "get", "compute", "find", "make", "solve", "do", "eval", "run", "build")
_FN_NOUNS = ("result", "answer", "output", "score", "total", "number", "thing", "task", "job", "step")


def bind_steps(structure: Structure, consts: Constants, ops: dict[str, Any], empty: Any) -> list[tuple[str, Any, Any]]:
    """(name, op, its constant) for each step of `structure`: the constants are handed out in
    order to the ops that take one (`op.consts` non-empty); the others get `empty`."""
    it = iter(consts)
    return [(name, ops[name], next(it) if ops[name].consts else empty) for name in structure]


def function_name(rng: random.Random) -> str:
    """One of 100 random names, so a model cannot key on one fixed name.

    Names are made of common words because they split into a few frequent tokens that a tiny
    model learns to copy from the prompt; in a measured 4-minute run with random-letter names
    (`f_ic`) most function tasks failed on a wrongly copied name alone.
    """
    return f"{rng.choice(_FN_VERBS)}_{rng.choice(_FN_NOUNS)}"


def ordinal(n: int) -> str:
    """English ordinal for the small steps used in prompts (2nd, 3rd, 4th)."""
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n, 'th') }"


def n_tests(rng: random.Random) -> tuple[int, int]:
    """(public, hidden) sizes: several public tests, because one is a weak verifier."""
    return rng.choice((3, 4)), rng.choice((3, 4, 5))


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def discriminates(cases: Sequence[tuple[Any, Any]]) -> bool:
    """True when no constant answer and no echo of the input passes all of `cases`.

    `cases` are (input, expected) pairs. Requiring two different answers defeats `return 0`
    (and every other constant); requiring one answer unequal to its input defeats the identity.
    """
    answers = {_canon(expected) for _, expected in cases}
    return len(answers) >= 2 and any(_canon(inp) != _canon(expected) for inp, expected in cases)


def split_cases(
    rng: random.Random,
    cases: Sequence[tuple[Any, Any]],
    n_public: int,
    n_hidden: int,
    hidden_first: Sequence[tuple[Any, Any]] = (),
) -> tuple[list[tuple[Any, Any]], list[tuple[Any, Any]]]:
    """Choose public and hidden cases from distinct candidates; the public ones discriminate.

    `hidden_first` cases (boundary inputs a near-miss solution gets wrong) open the hidden set,
    so that scoring always checks them. Raises NoDiscriminatingTests if the candidates cannot
    give a discriminating public set: silently weak tests are what this suite exists to avoid,
    so the suite draws the task again (`synth._problem`).
    """
    boundary = list(hidden_first)[:n_hidden]
    rest = [case for case in cases if case not in boundary]
    for _ in range(100):
        rng.shuffle(rest)
        public, others = rest[:n_public], rest[n_public:]
        hidden = boundary + others[: n_hidden - len(boundary)]
        if discriminates(public) and len(public) == n_public and len(hidden) == n_hidden:
            return public, hidden
    raise NoDiscriminatingTests(f"no discriminating public tests among {len(cases)} candidates")


def call_tests(fn: str, cases: Sequence[tuple[Any, Any]]) -> tuple[CallTest, ...]:
    """Single-argument call tests; `cases` are (argument, expected)."""
    return tuple(CallTest(fn_name=fn, args=[arg], expected=expected) for arg, expected in cases)


def unique(values: Sequence[Any]) -> list[Any]:
    """Order-preserving de-duplication by value (inputs may be lists, so no set())."""
    seen: set[str] = set()
    out = []
    for value in values:
        key = _canon(value)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


def render(lines: Sequence[str]) -> str:
    return "\n".join(lines) + "\n"


def indent(lines: Sequence[str]) -> list[str]:
    return ["    " + line for line in lines]
