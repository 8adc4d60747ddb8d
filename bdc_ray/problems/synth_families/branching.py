"""Branching: an if/elif/else chain over thresholds and divisibility, returning labels or numbers.

This is the family where a weak verifier fools best-of-N most (measured: 60% of tasks had a
sample passing one public test, 3.3% one passing the hidden tests). So the public tests show
every branch once, and the hidden tests go for what a near-miss gets wrong: the threshold
itself, the value just past it, zero and multiples for divisibility, and values that satisfy
both conditions (which branch wins depends on the order of the checks).
"""

from __future__ import annotations

import random
from itertools import product
from typing import Callable, Sequence

from bdc_ray.problems.synth_families.base import (
    Constants, Draft, FamilySpec, NoDiscriminatingTests, Structure, call_tests, discriminates, function_name,
    indent, n_tests, render, unique,
)

THRESHOLDS = tuple(range(-3, 16))
DIVISORS = tuple(range(2, 8))
POOL = tuple(range(-12, 31))

_LABELS = (
    ("low", "mid", "high"),
    ("cold", "warm", "hot"),
    ("small", "medium", "large"),
    ("A", "B", "C"),
    ("red", "amber", "green"),
    ("yes", "maybe", "no"),
    ("fizz", "buzz", "plain"),
    ("left", "center", "right"),
)

_EXPRS: dict[str, tuple[str, str, Callable[[int], int]]] = {
    "dbl": ("{x} * 2", "twice `{x}`", lambda x: x * 2),
    "trip": ("{x} * 3", "three times `{x}`", lambda x: x * 3),
    "neg": ("-{x}", "the negative of `{x}`", lambda x: -x),
    "sq": ("{x} * {x}", "`{x}` squared", lambda x: x * x),
    "inc": ("{x} + 1", "`{x}` plus 1", lambda x: x + 1),
    "dec": ("{x} - 1", "`{x}` minus 1", lambda x: x - 1),
    "half": ("{x} // 2", "`{x}` floor-divided by 2", lambda x: x // 2),
    "same": ("{x}", "`{x}` unchanged", lambda x: x),
    "zero": ("0", "0", lambda x: 0),
    "ten": ("10", "10", lambda x: 10),
}

_NUMS = (
    ("dbl", "neg", "zero"),
    ("inc", "dec", "same"),
    ("sq", "zero", "neg"),
    ("half", "dbl", "ten"),
    ("same", "trip", "zero"),
    ("neg", "inc", "sq"),
    ("ten", "same", "dbl"),
    ("dec", "half", "trip"),
)

_KINDS = ("lt", "gt", "div")

STRUCTURES: tuple[Structure, ...] = tuple(
    [(k, out) for k in _KINDS for out in ("label", "num")]
    + [(k1, k2, out) for k1, k2 in product(_KINDS, _KINDS) for out in ("label", "num")]
)

COMP_HELDOUT = frozenset(
    {
        ("lt", "div", "num"),
        ("div", "gt", "label"),
        ("gt", "lt", "label"),
        ("div", "div", "num"),
        ("gt", "num"),
    }
)


def _pair_ok(k1: str, a: int, k2: str, b: int) -> bool:
    """Every branch must be reachable, and the middle one must not be a single point."""
    if (k1, k2) == ("lt", "lt"):
        return b >= a + 2
    if (k1, k2) == ("gt", "gt"):
        return b <= a - 2
    if (k1, k2) == ("lt", "gt"):
        return b >= a
    if (k1, k2) == ("gt", "lt"):
        return b <= a
    if (k1, k2) == ("div", "div"):
        return a != b and b % a != 0
    return True


def constants(structure: Structure) -> list[Constants]:
    *kinds, out = structure
    outs = _LABELS if out == "label" else _NUMS
    ranges = [DIVISORS if k == "div" else THRESHOLDS for k in kinds]
    return [
        (*cs, o)
        for cs in product(*ranges)
        if len(kinds) == 1 or _pair_ok(kinds[0], cs[0], kinds[1], cs[1])
        for o in outs
    ]


def holds(kind: str, c: int, x: int) -> bool:
    return x < c if kind == "lt" else x > c if kind == "gt" else x % c == 0


def boundary_values(kinds: Sequence[str], cs: Sequence[int], rng: random.Random) -> tuple[list[int], list[int]]:
    """Per condition, (first) the value that tells `<` from `<=` (the threshold itself) or a
    non-zero multiple of a divisor, and (more) the other side of the threshold, or zero and a
    non-multiple: shared by every family built on these conditions."""
    first, more = [], []
    for kind, c in zip(kinds, cs):
        if kind == "div":
            first.append(c * rng.choice((-2, -1, 1, 2, 3, 4)))
            more += [0, c * rng.randint(1, 4) + 1]
        else:
            first.append(c)
            more.append(c - 1 if kind == "lt" else c + 1)
    return first, more


def _critical(kinds: list[str], cs: list[int], rng: random.Random) -> tuple[list[int], list[int]]:
    """(first, more): values a near-miss solution gets wrong.

    `first` holds the one value per condition that tells `<` from `<=` (the threshold itself) or
    catches a wrong divisibility test (a non-zero multiple), plus one value where both conditions
    hold, where only the order of the checks decides. `more` holds the other side of each
    threshold, zero and a non-multiple.
    """
    first, more = boundary_values(kinds, cs, rng)
    if len(kinds) == 2:
        both = [x for x in POOL if holds(kinds[0], cs[0], x) and holds(kinds[1], cs[1], x)]
        if both:
            first.append(rng.choice(both))
    return unique(first), unique(more)


COND_PHRASES = {
    "lt": ("less than {c}", "below {c}", "smaller than {c}"),
    "gt": ("greater than {c}", "above {c}", "larger than {c}"),
    "div": ("divisible by {c}", "a multiple of {c}"),
}
COND_THOUGHTS = {
    "lt": "{x} strictly below {c}",
    "gt": "{x} strictly above {c}",
    "div": "{x} divisible by {c} (remainder 0)",
}
COND_CODE = {"lt": "{x} < {c}", "gt": "{x} > {c}", "div": "{x} % {c} == 0"}

_PROMPTS = (
    (
        "Write a Python function `{f}({x})` that returns {o0} if `{x}` is {c1}, {o1} if it is {c2}, "
        "and {o2} otherwise. Check the conditions in that order.",
        "Write a Python function `{f}({x})` that returns {o0} if `{x}` is {c1} and {o2} otherwise.",
    ),
    (
        "Implement `{f}({x})` for an integer `{x}`: if it is {c1}, return {o0}; otherwise, if it is {c2}, "
        "return {o1}; otherwise return {o2}.",
        "Implement `{f}({x})` for an integer `{x}`: if it is {c1}, return {o0}; otherwise return {o2}.",
    ),
    (
        "Classify an integer `{x}` with `{f}({x})`: the answer is {o0} when `{x}` is {c1}, else {o1} when it is {c2}, "
        "else {o2}.",
        "Classify an integer `{x}` with `{f}({x})`: the answer is {o0} when `{x}` is {c1}, else {o2}.",
    ),
)


def draft(rng: random.Random, structure: Structure, consts: Constants) -> Draft:
    *kinds, out = structure
    *cs, outs = consts
    outs = outs if len(kinds) == 2 else (outs[0], outs[2])
    f = function_name(rng)
    x = rng.choice(("x", "n", "num", "val", "k", "score", "t", "v", "temp", "level"))

    if out == "label":
        said = [f'"{o}"' for o in outs]
        code_outs = said
        funcs = [lambda v, o=o: o for o in outs]
    else:
        said = [_EXPRS[o][1].format(x=x) for o in outs]
        code_outs = [_EXPRS[o][0].format(x=x) for o in outs]
        funcs = [_EXPRS[o][2] for o in outs]
    conds = [rng.choice(COND_PHRASES[k]).format(c=c) for k, c in zip(kinds, cs)]
    phrasing = rng.randrange(len(_PROMPTS))
    template = _PROMPTS[phrasing][0 if len(kinds) == 2 else 1]
    fields = {"f": f, "x": x, "o0": said[0], "o1": said[1], "o2": said[-1], "c1": conds[0], "c2": conds[-1]}
    prompt = template.format(**fields)

    frags = [COND_THOUGHTS[k].format(x=x, c=c) for k, c in zip(kinds, cs)]
    plain = [s.replace("`", "") for s in said]
    thoughts = [f"First, {frags[0]} gives {plain[0]}."]
    if len(kinds) == 2:
        thoughts.append(f"Otherwise, {frags[1]} gives {plain[1]}.")
    thoughts.append(f"Anything else gives {plain[-1]}.")
    tests = [COND_CODE[k].format(x=x, c=c) for k, c in zip(kinds, cs)]
    style = rng.choice(("if", "ternary"))
    if style == "if":
        thoughts.append("Use if/elif/else with a return in each branch.")
        body = [f"if {tests[0]}:", f"    return {code_outs[0]}"]
        if len(kinds) == 2:
            body += [f"elif {tests[1]}:", f"    return {code_outs[1]}"]
        body += ["else:", f"    return {code_outs[-1]}"]
    else:
        thoughts.append("One chained conditional expression is enough.")
        chain = " else ".join(f"{o} if {t}" for o, t in zip(code_outs, tests))
        body = [f"return {chain} else {code_outs[-1]}"]
    code = render([f"def {f}({x}):", *indent(body)])

    def region(value: int) -> int:
        """Index of the branch that answers for `value` (the last one is the `else`)."""
        return next((i for i, (k, c) in enumerate(zip(kinds, cs)) if holds(k, c, value)), len(kinds))

    def solve(value: int) -> object:
        return funcs[region(value)](value)

    n_public, n_hidden = n_tests(rng)
    first, more = _critical(kinds, cs, rng)
    critical = first + more
    for _ in range(100):
        public = []
        for r in range(len(kinds) + 1):
            members = [v for v in POOL if region(v) == r]
            public.append(rng.choice([v for v in members if v not in critical] or members))
        public += rng.sample([v for v in POOL if v not in public], n_public - len(public))
        if discriminates([(v, solve(v)) for v in public]):
            break
    else:
        raise NoDiscriminatingTests(f"no discriminating public tests for {structure} {consts}")
    rng.shuffle(more)
    hidden = unique([v for v in first + more if v not in public])[:n_hidden]
    hidden += rng.sample([v for v in POOL if v not in public and v not in hidden], n_hidden - len(hidden))
    public_tests = call_tests(f, [(v, solve(v)) for v in public])
    hidden_tests = call_tests(f, [(v, solve(v)) for v in hidden])
    return Draft(prompt, tuple(thoughts), code, f, public_tests, hidden_tests, phrasing, style)


SPEC = FamilySpec("branch", STRUCTURES, COMP_HELDOUT, constants, draft, ("if", "ternary"))
