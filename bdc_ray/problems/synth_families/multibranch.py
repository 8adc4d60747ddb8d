"""Multi-branch: an if/elif chain of three or four conditions, four or five answers, every answer
shown by a public test.

A multi-part task: the plan is one thought per case (its condition, its constant, its answer),
and a program that gets some cases right passes the public tests of those cases (one per case),
so a partial plan has a measurable value and a search can keep a right first case while it
works on the next; best-of-N needs every case right in one sample. Built from the branching
family's conditions. Hidden tests go for what a near-miss gets wrong: the thresholds themselves,
the values just past them, zero and multiples for divisibility, and values where two adjacent
conditions hold at once (only the order of the checks decides those).

Constants (a threshold or divisor per condition, and a label set) are far too many to
enumerate, so the family samples them (FamilySpec.sample) and the suite holds keys out by hash.
"""

from __future__ import annotations

import random
from itertools import product

from bdc_ray.problems.synth_families.base import (
    Constants, Draft, FamilySpec, NoDiscriminatingTests, Structure, TrainedPools, call_tests,
    function_name, indent, render, unique,
)
from bdc_ray.problems.synth_families.branching import (
    COND_CODE, COND_PHRASES, COND_THOUGHTS, DIVISORS, POOL, THRESHOLDS, boundary_values, holds,
)

_LABELS = (
    ("tiny", "small", "medium", "large", "huge"),
    ("a", "b", "c", "d", "e"),
    ("mon", "tue", "wed", "thu", "fri"),
    ("red", "orange", "yellow", "green", "blue"),
    ("north", "east", "south", "west", "center"),
    ("one", "two", "three", "four", "five"),
    ("cold", "cool", "mild", "warm", "hot"),
    ("ant", "bee", "cat", "dog", "eel"),
)
"""Five labels each: the first answers of the chain in order, the last for `else`."""

_KINDS = ("lt", "gt", "div")

STRUCTURES: tuple[Structure, ...] = tuple([*product(_KINDS, repeat=3), *product(_KINDS, repeat=4)])

COMP_HELDOUT = frozenset(
    {
        ("div", "gt", "lt"),
        ("lt", "div", "div"),
        ("gt", "gt", "div"),
        ("lt", "gt", "div", "lt"),
        ("div", "lt", "lt", "gt"),
        ("gt", "div", "gt", "lt"),
        ("div", "div", "lt", "gt"),
        ("lt", "lt", "gt", "div"),
        ("gt", "lt", "div", "div"),
        ("div", "gt", "div", "lt"),
        ("lt", "div", "gt", "gt"),
    }
)

_MIN_REGION = 2
"""Values of the test pool every answer must have: one for a public test, one more for variety."""


def _region(kinds: Structure, cs: tuple[int, ...], value: int) -> int:
    """Index of the case that answers for `value` (len(kinds) is the `else`)."""
    return next((i for i, (k, c) in enumerate(zip(kinds, cs)) if holds(k, c, value)), len(kinds))


def _reachable(kinds: Structure, cs: tuple[int, ...]) -> bool:
    """Every answer, `else` included, is given for at least _MIN_REGION values of the pool: no case
    is shadowed by an earlier one (`< 5` after `< 3` is fine, `< 3` after `< 5` never answers)."""
    sizes = [0] * (len(kinds) + 1)
    for value in POOL:
        sizes[_region(kinds, cs, value)] += 1
    return min(sizes) >= _MIN_REGION


_SAMPLE_TRIES = 500
_MAX_HIDDEN = 8
"""Hidden tests: 4-6, more when the telling values alone are more (at most 3 orders + 4 thresholds)."""


def sample(rng: random.Random, structure: Structure, trained: TrainedPools) -> Constants:
    """Thresholds / divisors per condition, and a label set, such that every case can answer."""
    for _ in range(_SAMPLE_TRIES):
        cs = tuple(rng.choice(DIVISORS if k == "div" else THRESHOLDS) for k in structure)
        if _reachable(structure, cs):
            return (*cs, rng.choice(_LABELS))
    raise NoDiscriminatingTests(f"multibranch {structure}: no reachable constants in {_SAMPLE_TRIES} draws")


def _prompt(phrasing: int, f: str, x: str, outs: list[str], conds: list[str]) -> str:
    first, *middle = list(zip(outs, conds))
    last = outs[-1]
    if phrasing == 0:
        said = [f"{first[0]} if `{x}` is {first[1]}", *(f"{o} if it is {c}" for o, c in middle)]
        return f"Write a Python function `{f}({x})` that returns {', '.join(said)}, and {last} otherwise. " \
            "Check the conditions in that order."
    if phrasing == 1:
        rest = "".join(f"otherwise, if it is {c}, return {o}; " for o, c in middle)
        return f"Implement `{f}({x})` for an integer `{x}`: if it is {first[1]}, return {first[0]}; {rest}otherwise return {last}."
    rest = "".join(f"else {o} when it is {c}, " for o, c in middle)
    return f"Classify an integer `{x}` with `{f}({x})`: the answer is {first[0]} when `{x}` is {first[1]}, {rest}else {last}."


_PHRASINGS = 3

_STYLE_THOUGHTS = {
    "elif": "Use if/elif/else with a return in each branch.",
    "returns": "Return as soon as a check holds; the last answer comes after all the checks.",
}


def _critical(kinds: Structure, cs: tuple[int, ...], rng: random.Random) -> tuple[list[int], list[int]]:
    """(first, more): values a near-miss gets wrong, the most telling first.

    `first`: for each pair of adjacent cases a value answered by the earlier one on which the
    later one holds too (swapping the two checks changes its answer), each threshold itself (`<`
    vs `<=`) and a non-zero multiple of each divisor. `more`: the other side of each threshold,
    zero, a non-multiple.
    """
    first = []
    for i in range(len(kinds) - 1):
        both = [v for v in POOL if _region(kinds, cs, v) == i and holds(kinds[i + 1], cs[i + 1], v)]
        if both:
            first.append(rng.choice(both))
    edges, more = boundary_values(kinds, cs, rng)
    return unique(first + edges), unique(more)


def draft(rng: random.Random, structure: Structure, consts: Constants) -> Draft:
    kinds = structure
    *cs_list, labels = consts
    cs = tuple(cs_list)
    outs = [*labels[: len(kinds)], labels[-1]]
    f = function_name(rng)
    x = rng.choice(("x", "n", "num", "val", "k", "score", "t", "v", "temp", "level"))
    conds = [rng.choice(COND_PHRASES[k]).format(c=c) for k, c in zip(kinds, cs)]
    phrasing = rng.randrange(_PHRASINGS)
    prompt = _prompt(phrasing, f, x, [f'"{o}"' for o in outs], conds)

    frags = [COND_THOUGHTS[k].format(x=x, c=c) for k, c in zip(kinds, cs)]
    thoughts = [f"First, {frags[0]} gives {outs[0]}."]
    thoughts += [f"Otherwise, {frag} gives {o}." for frag, o in zip(frags[1:], outs[1:])]
    thoughts.append(f"Anything else gives {outs[-1]}.")
    style = rng.choice(tuple(_STYLE_THOUGHTS))
    thoughts.append(_STYLE_THOUGHTS[style])
    body = []
    for i, (k, c) in enumerate(zip(kinds, cs)):
        keyword = "elif" if i and style == "elif" else "if"
        body += [f"{keyword} {COND_CODE[k].format(x=x, c=c)}:", f'    return "{outs[i]}"']
    body += ["else:", f'    return "{outs[-1]}"'] if style == "elif" else [f'return "{outs[-1]}"']
    code = render([f"def {f}({x}):", *indent(body)])

    def region(value: int) -> int:
        return _region(kinds, cs, value)

    first, more = _critical(kinds, cs, rng)
    critical = set(first + more)
    public = []
    for r in range(len(kinds) + 1):  # one public test per case, a plain member where there is one
        members = [v for v in POOL if region(v) == r]
        public.append(rng.choice([v for v in members if v not in critical] or members))
    rng.shuffle(public)
    rng.shuffle(more)
    first = [v for v in first if v not in public]
    n_hidden = min(_MAX_HIDDEN, max(rng.choice((4, 5, 6)), len(first)))
    hidden = unique(first + [v for v in more if v not in public])[:n_hidden]
    hidden += rng.sample([v for v in POOL if v not in public and v not in hidden], n_hidden - len(hidden))

    def answer(value: int) -> str:
        return outs[region(value)]

    public_tests = call_tests(f, [(v, answer(v)) for v in public])
    hidden_tests = call_tests(f, [(v, answer(v)) for v in hidden])
    return Draft(prompt, tuple(thoughts), code, f, public_tests, hidden_tests, phrasing, style,
                 public_parts=tuple(f"case{region(v) + 1}" for v in public),
                 hidden_parts=tuple(f"case{region(v) + 1}" for v in hidden))


SPEC = FamilySpec(
    "multibranch", STRUCTURES, COMP_HELDOUT, None, draft, tuple(_STYLE_THOUGHTS), sample=sample
)
