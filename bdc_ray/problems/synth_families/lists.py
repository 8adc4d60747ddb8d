"""List operations: filter a list of integers, then aggregate what is kept.

Every aggregate states its answer for an empty selection (0, 1, -1 or []), and the tests
contain lists where nothing is kept and lists holding the filter's threshold itself, so
`>` versus `>=` and the empty case are both checked.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from itertools import product
from typing import Callable

from bdc_ray.problems.synth_families.base import (
    Constants, Draft, FamilySpec, Structure, call_tests, function_name, indent, n_tests, render,
    split_cases, unique,
)


@dataclass(frozen=True)
class _Filter:
    consts: tuple[int, ...]
    noun: str
    thought: str
    cond: Callable[[int], str] | None
    """The condition on the loop variable `v` for constant `c`; None keeps everything."""
    keep: Callable[[int, int], bool]


_FILTERS: dict[str, _Filter] = {
    "even": _Filter(
        (), "the even numbers", "keep only the even numbers.", lambda c: "v % 2 == 0", lambda v, c: v % 2 == 0
    ),
    "odd": _Filter(
        (), "the odd numbers", "keep only the odd numbers.", lambda c: "v % 2 != 0", lambda v, c: v % 2 != 0
    ),
    "gt": _Filter(
        tuple(range(-2, 10)), "the numbers greater than {c}", "keep only numbers strictly above {c}.",
        lambda c: f"v > {c}", lambda v, c: v > c,
    ),
    "lt": _Filter(
        tuple(range(-2, 10)), "the numbers less than {c}", "keep only numbers strictly below {c}.",
        lambda c: f"v < {c}", lambda v, c: v < c,
    ),
    "div": _Filter(
        tuple(range(3, 8)), "the multiples of {c}", "keep only numbers divisible by {c}.",
        lambda c: f"v % {c} == 0", lambda v, c: v % c == 0,
    ),
    "pos": _Filter(
        (), "the positive numbers", "keep only numbers above zero.", lambda c: "v > 0", lambda v, c: v > 0
    ),
    "all": _Filter((), "all the numbers", "", None, lambda v, c: True),
}

_Lines = tuple[str, ...]


@dataclass(frozen=True)
class _Agg:
    of: str
    of_kept: str
    thought: str
    loop: tuple[_Lines, _Lines, _Lines]
    """Lines before the loop, lines run for each kept `v`, lines after the loop."""
    builtin: Callable[[Callable[[str], str]], str]
    """The return expression, given `gen(head)` = "head for v in xs if cond"."""
    apply: Callable[[list[int]], object]


def _extreme(better: str) -> tuple[_Lines, _Lines, _Lines]:
    return (
        ("best = None",),
        (f"if best is None or v {better} best:", "    best = v"),
        ("return 0 if best is None else best",),
    )


_AGGS: dict[str, _Agg] = {
    "sum": _Agg(
        "the sum of {F}", "their sum", "add them up; nothing kept gives 0.",
        (("total = 0",), ("total += v",), ("return total",)),
        lambda gen: f"sum({gen('v')})", sum,
    ),
    "count": _Agg(
        "how many of {F} there are", "how many are left", "count them; nothing kept gives 0.",
        (("count = 0",), ("count += 1",), ("return count",)),
        lambda gen: f"len([{gen('v')}])", len,
    ),
    "max": _Agg(
        "the largest of {F}, or 0 if there are none", "the largest one (0 if none are left)",
        "track the largest one; nothing kept gives 0.",
        _extreme(">"), lambda gen: f"max(({gen('v')}), default=0)", lambda kept: max(kept, default=0),
    ),
    "min": _Agg(
        "the smallest of {F}, or 0 if there are none", "the smallest one (0 if none are left)",
        "track the smallest one; nothing kept gives 0.",
        _extreme("<"), lambda gen: f"min(({gen('v')}), default=0)", lambda kept: min(kept, default=0),
    ),
    "prod": _Agg(
        "the product of {F} (1 if there are none)", "their product (1 if none are left)",
        "multiply them together, starting from 1.",
        (("prod = 1",), ("prod *= v",), ("return prod",)),
        lambda gen: f"math.prod({gen('v')})", math.prod,
    ),
    "sumsq": _Agg(
        "the sum of the squares of {F}", "the sum of their squares", "square each one and add the squares up.",
        (("total = 0",), ("total += v * v",), ("return total",)),
        lambda gen: f"sum({gen('v * v')})", lambda kept: sum(k * k for k in kept),
    ),
    "keep": _Agg(
        "a list of {F}, in their original order", "them as a list, in order", "collect them in a new list, in order.",
        (("out = []",), ("out.append(v)",), ("return out",)),
        lambda gen: f"[{gen('v')}]", list,
    ),
    "first": _Agg(
        "the first of {F}, or -1 if there is none", "the first one (-1 if none are left)",
        "return the first one found; if none, return -1.",
        ((), ("return v",), ("return -1",)),
        lambda gen: f"next(({gen('v')}), -1)", lambda kept: kept[0] if kept else -1,
    ),
}

STRUCTURES: tuple[Structure, ...] = tuple(
    (flt, agg) for flt, agg in product(_FILTERS, _AGGS) if (flt, agg) != ("all", "keep")
)

COMP_HELDOUT = frozenset(
    {
        ("even", "prod"),
        ("gt", "first"),
        ("lt", "sumsq"),
        ("div", "max"),
        ("odd", "keep"),
        ("pos", "min"),
        ("all", "sumsq"),
        ("div", "count"),
    }
)


def constants(structure: Structure) -> list[Constants]:
    return [(c,) for c in _FILTERS[structure[0]].consts] or [()]


def _inputs(rng: random.Random, flt: str, c: int) -> list[list[int]]:
    """Short lists; some carry the threshold or multiples, one may keep nothing at all."""
    lists = []
    for i in range(14):
        values = [rng.randint(-9, 15) for _ in range(rng.randint(1, 7))]
        if flt in ("gt", "lt") and i % 3 == 0:
            values.insert(rng.randrange(len(values) + 1), c)
        if flt == "div" and i % 3 == 0:
            values.insert(rng.randrange(len(values) + 1), c * rng.randint(-2, 4))
        lists.append(values)
    if rng.random() < 0.3:
        lists.append([])
    return unique(lists)


def _boundary(rng: random.Random, flt: str, c: int) -> list[int] | None:
    """A list whose only near-candidate is the threshold itself (`0` for "positive"): the filter
    keeps nothing from it, a `>=`-for-`>` slip keeps the threshold."""
    if flt not in ("gt", "lt", "pos"):
        return None
    edge = 0 if flt == "pos" else c
    away = -1 if flt in ("gt", "pos") else 1
    values = [edge + away * rng.randint(1, 6) for _ in range(rng.randint(0, 3))]
    values.insert(rng.randrange(len(values) + 1), edge)
    return values


_PROMPTS = (
    "Write a Python function `{f}({xs})` that takes a list of integers `{xs}` and returns {of}.",
    "Implement `{f}({xs})`. Keep only {F} from the list `{xs}`, then return {of_kept}.",
    "Given a list of ints `{xs}`, the function `{f}` should compute {of} and return it.",
)


def draft(rng: random.Random, structure: Structure, consts: Constants) -> Draft:
    flt, agg = _FILTERS[structure[0]], _AGGS[structure[1]]
    c = consts[0] if consts else 0
    f = function_name(rng)
    xs = rng.choice(("nums", "xs", "arr", "values", "lst", "data", "seq", "vals", "numbers", "ints"))

    phrasing = rng.choice((0, 2) if structure[0] == "all" else (0, 1, 2))
    noun = flt.noun.format(c=c)
    of = agg.of.format(F=f"{noun} in `{xs}`" if phrasing == 0 else noun)
    prompt = _PROMPTS[phrasing].format(f=f, xs=xs, of=of, F=noun, of_kept=agg.of_kept)

    thoughts = [flt.thought.format(c=c)] if flt.cond else []
    kept = "the kept numbers" if flt.cond else "all the numbers"
    thoughts.append(f"For {kept}, {agg.thought}")
    style = rng.choice(("loop", "builtin"))
    cond = flt.cond(c) if flt.cond else None

    def gen(head: str) -> str:
        return f"{head} for v in {xs}" + (f" if {cond}" if cond else "")

    if style == "loop":
        thoughts.append(
            "Return from inside the loop as soon as one is found."
            if structure[1] == "first"
            else "One pass with an accumulator is enough."
        )
        before, each, after = agg.loop
        inner = [f"if {cond}:", *indent(each)] if cond else list(each)
        body = [*before, f"for v in {xs}:", *indent(inner), *after]
        header = []
    else:
        thoughts.append("One comprehension or generator expression does it in one line.")
        body = [f"return {agg.builtin(gen)}"]
        header = ["import math", ""] if structure[1] == "prod" else []
    thoughts = [t[0].upper() + t[1:] for t in thoughts]
    code = render([*header, f"def {f}({xs}):", *indent(body)])

    def case(values: list[int]) -> tuple[list[int], object]:
        return values, agg.apply([x for x in values if flt.keep(x, c)])

    edge = _boundary(rng, structure[0], c)
    boundary = [case(edge)] if edge is not None else []
    cases = [case(values) for values in _inputs(rng, structure[0], c) if values != edge]
    n_public, n_hidden = n_tests(rng)
    public, hidden = split_cases(rng, cases, n_public, n_hidden, hidden_first=boundary)
    return Draft(prompt, tuple(thoughts), code, f, call_tests(f, public), call_tests(f, hidden), phrasing, style)


SPEC = FamilySpec("list", STRUCTURES, COMP_HELDOUT, constants, draft, ("loop", "builtin"))
