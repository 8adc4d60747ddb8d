"""Counting and dictionary building over characters, words of a sentence, or a list of strings.

The unit (what is counted) and the operation (what is reported) are separate axes, so the
compositional held-out set can ask for an operation on a unit it was never trained with.
Dictionary keys are always strings, so expected values survive a JSON round trip unchanged.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from bdc_ray.problems.synth_families.base import (
    Constants, Draft, FamilySpec, Structure, call_tests, function_name, indent, n_tests, render,
    split_cases, unique,
)

_CHARS = "abcde"
_VOCAB = (
    "ox", "ant", "ape", "alpaca", "bat", "bee", "bear", "beaver", "cat", "cow", "crab", "camel",
    "dog", "duck", "dingo", "donkey", "eel", "emu", "eagle",
)
"""Shared first letters and lengths 2 to 6, so grouping and length filters both matter."""

_OP_CONSTS: dict[str, tuple[Any, ...]] = {
    "freq": (1, 2, 3, 4),
    "exactly": (1, 2, 3, 4),
    "by_first": (3, 4, 5, 6),
    "top": (),
}

STRUCTURES: tuple[Structure, ...] = (
    ("chars", "freq"),
    ("chars", "count_of"),
    ("chars", "exactly"),
    ("chars", "top"),
    *((unit, op) for unit in ("words", "items") for op in ("freq", "count_of", "exactly", "by_first", "top")),
)

COMP_HELDOUT = frozenset({("words", "exactly"), ("items", "freq"), ("chars", "top"), ("items", "by_first")})


def constants(structure: Structure) -> list[Constants]:
    unit, op = structure
    if op == "count_of":
        return [(t,) for t in (_CHARS if unit == "chars" else _VOCAB)]
    return [(c,) for c in _OP_CONSTS[op]] or [()]


def _times(k: int) -> str:
    return {1: "once", 2: "twice"}.get(k, f"{k} times")


def _units(unit: str, value: Any) -> list[str]:
    return value.split() if unit == "words" else list(value)


def _solve(op: str, c: Any, units: list[str]) -> Any:
    counts = Counter(units)
    if op == "freq":
        return {u: n for u, n in counts.items() if n >= c}
    if op == "count_of":
        return counts[c]
    if op == "exactly":
        return sum(1 for n in counts.values() if n == c)
    if op == "by_first":
        return dict(Counter(u[0] for u in units if len(u) >= c))
    best = max(counts.values())
    return next(u for u in units if counts[u] == best)


def _inputs(rng: random.Random, unit: str, op: str, c: Any) -> list[Any]:
    """Inputs with many repeats (a small alphabet or a few words), some holding the target."""
    values: list[Any] = []
    for i in range(16):
        if unit == "chars":
            alphabet = _CHARS[: rng.randint(3, 5)]
            units = [rng.choice(alphabet) for _ in range(rng.randint(4, 13))]
        else:
            pool = rng.sample(_VOCAB, rng.randint(2, 5))
            units = [rng.choice(pool) for _ in range(rng.randint(3, 10))]
        if op == "count_of" and i % 2 == 0:
            units.insert(rng.randrange(len(units) + 1), c)
        values.append("".join(units) if unit == "chars" else " ".join(units) if unit == "words" else units)
    if op != "top" and rng.random() < 0.3:
        values.append("" if unit != "items" else [])
    return unique(values)


_ARG = {
    "chars": (("s", "text", "word", "letters", "st"), "a string `{a}`", "character"),
    "words": (
        ("sentence", "text", "line", "phrase", "s"), "a sentence `{a}` of words separated by single spaces", "word"
    ),
    "items": (("words", "items", "names", "tokens", "strs", "animals"), "a list of strings `{a}`", "string"),
}

_NOUNS = {
    "freq": (
        "a dictionary mapping each {u} to the number of times it occurs",
        "a dictionary mapping each {u} that occurs at least {c} times to its count",
    ),
    "count_of": ('how many {u}s are equal to "{c}"', 'how many times the letter "{c}" occurs'),
    "exactly": ("how many different {u}s occur exactly {times}",),
    "by_first": ("a dictionary mapping each first letter to how many {u}s of at least {c} letters start with it",),
    "top": ("the {u} that occurs most often (on a tie, the one that appears first)",),
}

_THOUGHTS = {
    "freq": ("Count every {u} in a dictionary.", "Keep only the {u}s counted at least {c} times."),
    "count_of": ('Count the {u}s equal to "{c}".',),
    "exactly": ("Count how often each {u} occurs.", "Then count the {u}s whose count is exactly {c}."),
    "by_first": ("Skip {u}s shorter than {c} letters.", "Count the rest by their first letter."),
    "top": ("Compare how often each {u} occurs.", "On a tie, the one seen first must win."),
}

_STYLE_THOUGHTS = {
    ("loop", "count_of"): "A loop with a counter does it.",
    ("builtin", "count_of"): "The built-in count method does it.",
    ("loop", "top"): "Scan in order, replacing the best only on a strictly higher count.",
    ("builtin", "top"): "The built-in max, keyed by the count, returns the first of equal items.",
    ("loop", "dict"): "Fill a plain dictionary in a loop, starting each count at 0.",
    ("builtin", "dict"): "collections.Counter does the counting.",
}

_PROMPTS = (
    "Write a Python function `{f}({a})` that takes {arg} and returns {noun}.",
    "Implement `{f}({a})`. Given {arg}, return {noun}.",
    "The function `{f}({a})` receives {arg}. Compute {noun} and return it.",
)


def _loop_code(op: str, c: Any, seq: str, u: str) -> list[str]:
    tally = ["counts = {}", f"for {u} in {seq}:", f"    counts[{u}] = counts.get({u}, 0) + 1"]
    if op == "freq":
        return [*tally, "return counts" if c == 1 else f"return {{k: v for k, v in counts.items() if v >= {c}}}"]
    if op == "count_of":
        return ["total = 0", f"for {u} in {seq}:", f'    if {u} == "{c}":', "        total += 1", "return total"]
    if op == "exactly":
        return [*tally, "total = 0", "for v in counts.values():", f"    if v == {c}:", "        total += 1", "return total"]
    if op == "by_first":
        key = f"{u}[0]"
        return [
            "counts = {}", f"for {u} in {seq}:", f"    if len({u}) >= {c}:",
            f"        counts[{key}] = counts.get({key}, 0) + 1", "return counts",
        ]
    return [
        f"best = {seq}[0]", f"for {u} in {seq}:", f"    if {seq}.count({u}) > {seq}.count(best):",
        f"        best = {u}", "return best",
    ]


def _builtin_code(op: str, c: Any, seq: str, u: str) -> list[str]:
    if op == "freq" and c == 1:
        return [f"return dict(Counter({seq}))"]
    if op == "freq":
        return [f"return {{k: v for k, v in Counter({seq}).items() if v >= {c}}}"]
    if op == "count_of":
        return [f'return {seq}.count("{c}")']
    if op == "exactly":
        return [f"return sum(1 for v in Counter({seq}).values() if v == {c})"]
    if op == "by_first":
        return [f"return dict(Counter({u}[0] for {u} in {seq} if len({u}) >= {c}))"]
    return [f"return max({seq}, key={seq}.count)"]


def draft(rng: random.Random, structure: Structure, consts: Constants) -> Draft:
    unit, op = structure
    c = consts[0] if consts else None
    names, arg_desc, u_noun = _ARG[unit]
    f = function_name(rng)
    a = rng.choice(names)
    arg = arg_desc.format(a=a)
    noun_forms = _NOUNS[op]
    if op == "freq":
        noun = noun_forms[0 if c == 1 else 1]
    elif op == "count_of":
        noun = noun_forms[1 if unit == "chars" else 0]
    else:
        noun = noun_forms[0]
    noun = noun.format(u=u_noun, c=c, times=_times(c) if isinstance(c, int) else "")
    phrasing = rng.randrange(len(_PROMPTS))
    prompt = _PROMPTS[phrasing].format(f=f, a=a, arg=arg, noun=noun)

    style = rng.choice(("loop", "builtin"))
    thoughts = ["Split the sentence on spaces into words."] if unit == "words" else []
    op_thoughts = _THOUGHTS[op][:1] if op == "freq" and c == 1 else _THOUGHTS[op]
    thoughts += [t.format(u=u_noun, c=c) for t in op_thoughts]
    thoughts.append(_STYLE_THOUGHTS[(style, op if op in ("count_of", "top") else "dict")])

    u = "ch" if unit == "chars" else "w"
    seq, prelude = (a, []) if unit != "words" else ("words", [f"words = {a}.split()"])
    if style == "loop":
        body = _loop_code(op, c, seq, u)
        header = []
    else:
        body = _builtin_code(op, c, seq, u)
        header = ["from collections import Counter", ""] if "Counter" in body[0] else []
    code = render([*header, f"def {f}({a}):", *indent([*prelude, *body])])

    cases = [(value, _solve(op, c, _units(unit, value))) for value in _inputs(rng, unit, op, c)]
    n_public, n_hidden = n_tests(rng)
    public, hidden = split_cases(rng, cases, n_public, n_hidden)
    return Draft(prompt, tuple(thoughts), code, f, call_tests(f, public), call_tests(f, hidden), phrasing, style)


SPEC = FamilySpec("count", STRUCTURES, COMP_HELDOUT, constants, draft, ("loop", "builtin"))
