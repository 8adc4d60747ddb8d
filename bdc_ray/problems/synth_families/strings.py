"""String transforms: one or two chained edits of a lowercase string.

Case changes (upper, capitalise) may only come last: applied first they would turn the later
letter-based edits (remove "a", replace "e") into silent no-ops, a task whose prompt lies.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import product
from typing import Callable

from bdc_ray.problems.synth_families.base import (
    Constants, Draft, FamilySpec, Structure, bind_steps, call_tests, function_name, indent, n_tests,
    ordinal, render, split_cases, unique,
)

_LETTERS = "aeinorst"
_SUFFIXES = ("ing", "ed", "ly", "er", "s", "xyz", "zz", "ab")


@dataclass(frozen=True)
class _Op:
    """One edit. `expr` receives an atom (a compound operand comes bracketed); `compound` marks
    a result that is not one (`s + "ed"`); `loops` says whether the loop-style code loops."""

    consts: tuple
    phrases: tuple[str, ...]
    thought: str
    expr: Callable[[str, object], str]
    loop: Callable[[str, str, object], list[str]]
    apply: Callable[[str, object], str]
    compound: bool = False
    loops: bool = True


def _char_loop(dst: str, src: str, body: list[str]) -> list[str]:
    return [f'{dst} = ""', f"for ch in {src}:", *indent(body)]


def _index_loop(dst: str, src: str, header: str) -> list[str]:
    return [f'{dst} = ""', header, f"    {dst} += {src}[i]"]


_OPS: dict[str, _Op] = {
    "rev": _Op(
        (),
        ("reverse it", "reverse the order of its characters"),
        "reverse the string.",
        lambda e, c: f"{e}[::-1]",
        lambda dst, src, c: _char_loop(dst, src, [f"{dst} = ch + {dst}"]),
        lambda s, c: s[::-1],
    ),
    "upper": _Op(
        (),
        ("convert it to upper case", "make every letter upper case"),
        "convert every letter to upper case.",
        lambda e, c: f"{e}.upper()",
        lambda dst, src, c: _char_loop(dst, src, [f"{dst} += ch.upper()"]),
        lambda s, c: s.upper(),
    ),
    "cap": _Op(
        (),
        ("capitalise its first letter", "make its first character upper case"),
        "make only the first character upper case.",
        lambda e, c: f"{e}.capitalize()",
        lambda dst, src, c: [f"{dst} = {src}[:1].upper() + {src}[1:]"],
        lambda s, c: s.capitalize(),
        loops=False,
    ),
    "drop": _Op(
        tuple(_LETTERS),
        ('remove every "{c}"', 'delete all occurrences of "{c}"'),
        'drop every "{c}".',
        lambda e, c: f'{e}.replace("{c}", "")',
        lambda dst, src, c: _char_loop(dst, src, [f'if ch != "{c}":', f"    {dst} += ch"]),
        lambda s, c: s.replace(c, ""),
    ),
    "swap": _Op(
        tuple((a, b) for a in _LETTERS for b in _LETTERS + "uxz" if a != b),
        ('replace every "{c[0]}" with "{c[1]}"', 'change each "{c[0]}" into "{c[1]}"'),
        'turn each "{c[0]}" into "{c[1]}".',
        lambda e, c: f'{e}.replace("{c[0]}", "{c[1]}")',
        lambda dst, src, c: _char_loop(
            dst, src, [f'if ch == "{c[0]}":', f'    {dst} += "{c[1]}"', "else:", f"    {dst} += ch"]
        ),
        lambda s, c: s.replace(c[0], c[1]),
    ),
    "dup": _Op(
        (2, 3),
        ("repeat each character {c} times", "write every character {c} times in a row"),
        "repeat each character {c} times.",
        lambda e, c: f'"".join(ch * {c} for ch in {e})',
        lambda dst, src, c: _char_loop(dst, src, [f"{dst} += ch * {c}"]),
        lambda s, c: "".join(x * c for x in s),
    ),
    "step": _Op(
        (2, 3, 4),
        (
            "keep every {nth} character, starting with the first",
            "keep only the characters at positions 0, {c}, {c2} and so on",
        ),
        "keep positions 0, {c}, {c2} and so on (a step of {c}).",
        lambda e, c: f"{e}[::{c}]",
        lambda dst, src, c: _index_loop(dst, src, f"for i in range(0, len({src}), {c}):"),
        lambda s, c: s[::c],
    ),
    "head": _Op(
        tuple(range(2, 7)),
        ("keep only its first {c} characters", "cut it to at most {c} characters from the start"),
        "keep at most the first {c} characters.",
        lambda e, c: f"{e}[:{c}]",
        lambda dst, src, c: _index_loop(dst, src, f"for i in range(min({c}, len({src}))):"),
        lambda s, c: s[:c],
    ),
    "suffix": _Op(
        _SUFFIXES,
        ('append "{c}"', 'add "{c}" to the end'),
        'append "{c}" at the end.',
        lambda e, c: f'{e} + "{c}"',
        lambda dst, src, c: [f'{dst} = {src} + "{c}"'],
        lambda s, c: s + c,
        compound=True,
        loops=False,
    ),
}

_CASE = {"upper", "cap"}

STRUCTURES: tuple[Structure, ...] = tuple(
    [(op,) for op in _OPS] + [(a, b) for a, b in product(_OPS, _OPS) if a != b and a not in _CASE]
)

COMP_HELDOUT = frozenset(
    {
        ("rev", "upper"),
        ("drop", "dup"),
        ("swap", "head"),
        ("step", "suffix"),
        ("suffix", "rev"),
        ("head", "cap"),
        ("dup", "drop"),
        ("rev", "step"),
        ("suffix", "swap"),
    }
)


def _bind(structure: Structure, consts: Constants) -> list[tuple[str, _Op, object]]:
    return bind_steps(structure, consts, _OPS, None)


def _meaningful(structure: Structure, consts: Constants) -> bool:
    """Reject constants that make one edit a no-op or undo the other."""
    bound = {name: c for name, _, c in _bind(structure, consts)}
    if structure == ("drop", "swap") and bound["drop"] == bound["swap"][0]:
        return False
    if structure == ("swap", "drop") and bound["drop"] == bound["swap"][1]:
        return False
    return not (structure == ("dup", "step") and bound["dup"] == bound["step"])


def constants(structure: Structure) -> list[Constants]:
    ranges = [_OPS[op].consts for op in structure if _OPS[op].consts]
    return [c for c in product(*ranges) if _meaningful(structure, c)]


def _phrase_args(c: object) -> dict:
    return {"c": c, "nth": ordinal(c) if isinstance(c, int) else c, "c2": 2 * c if isinstance(c, int) else c}


def _inputs(rng: random.Random, steps: list[tuple[str, _Op, object]]) -> list[str]:
    """Words over a small alphabet, half of them seeded with the letters the task edits."""
    edited = [c if name == "drop" else c[0] for name, _, c in steps if name in ("drop", "swap")]
    words = []
    for i in range(16):
        word = [rng.choice(_LETTERS + "bcdlmpu") for _ in range(rng.randint(3, 9))]
        if edited and i % 2 == 0:
            for _ in range(rng.randint(1, 2)):
                word.insert(rng.randrange(len(word) + 1), rng.choice(edited))
        words.append("".join(word))
    if rng.random() < 0.3:
        words.append("")
    return unique(words)


_PROMPTS = (
    "Write a Python function `{f}({s})` for a lowercase string `{s}`: {steps}, and return the new string.",
    "Implement `{f}({s})`: given a string of lowercase letters, {steps}. Return the result.",
    "Given a lowercase string `{s}`, the function `{f}` should {steps}, then return what it has built.",
)


def draft(rng: random.Random, structure: Structure, consts: Constants) -> Draft:
    steps = _bind(structure, consts)
    ops = [(op, c) for _, op, c in steps]
    f = function_name(rng)
    s = rng.choice(("s", "text", "word", "w", "line", "st", "chars", "string"))
    phrases = [rng.choice(op.phrases).format(**_phrase_args(c)) for op, c in ops]
    phrasing = rng.randrange(len(_PROMPTS))
    prompt = _PROMPTS[phrasing].format(f=f, s=s, steps=", then ".join(phrases))

    said = [op.thought.format(**_phrase_args(c)) for op, c in ops]
    thoughts = [f"First {said[0]}", f"Then {said[1]}"] if len(said) > 1 else [said[0][0].upper() + said[0][1:]]
    style = rng.choice(("loop", "expr"))
    if style == "expr":
        thoughts.append("Chain slicing and string methods in one return.")
        expr, compound = s, False
        for op, c in ops:
            expr = op.expr(f"({expr})" if compound else expr, c)
            compound = op.compound
        body = [f"return {expr}"]
    else:
        thoughts.append(
            "Build each new string in a loop, one character at a time."
            if any(op.loops for op, _ in ops)
            else "Build the result one statement at a time."
        )
        names = [s, *(["t"] if len(ops) == 2 else []), "out"]
        body = []
        for (op, c), src, dst in zip(ops, names, names[1:]):
            body += op.loop(dst, src, c)
        body.append(f"return {names[-1]}")
    code = render([f"def {f}({s}):", *indent(body)])

    def solve(text: str) -> str:
        for op, c in ops:
            text = op.apply(text, c)
        return text

    cases = [(w, solve(w)) for w in _inputs(rng, steps)]
    n_public, n_hidden = n_tests(rng)
    public, hidden = split_cases(rng, cases, n_public, n_hidden)
    return Draft(prompt, tuple(thoughts), code, f, call_tests(f, public), call_tests(f, hidden), phrasing, style)


SPEC = FamilySpec("string", STRUCTURES, COMP_HELDOUT, constants, draft, ("loop", "expr"))
