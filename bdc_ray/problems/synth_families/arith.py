"""Arithmetic on one integer: one or two chained operations with constants.

The order of two operations matters for almost every pair (`x * 3 + 5` is not `(x + 5) * 3`),
and floor division / modulo follow Python's rules on negative inputs, so tests include negative
numbers: a model must get both the order and the exact operator right.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import product
from typing import Callable

from bdc_ray.problems.synth_families.base import (
    Constants, Draft, FamilySpec, Structure, bind_steps, call_tests, function_name, indent, n_tests,
    render, split_cases,
)


@dataclass(frozen=True)
class _Op:
    consts: tuple[int, ...]
    phrases: tuple[str, ...]
    thought: str
    expr: Callable[[str, int], str]
    stmt: Callable[[int], str]
    """The step as a statement updating the result variable `r`."""
    apply: Callable[[int, int], int]


def _atom(expr: str, compound: bool) -> str:
    return f"({expr})" if compound else expr


_OPS: dict[str, _Op] = {
    "add": _Op(
        tuple(range(1, 13)),
        ("add {c}", "add {c} to it", "increase it by {c}"),
        "add {c}.",
        lambda e, c: f"{e} + {c}",
        lambda c: f"r += {c}",
        lambda x, c: x + c,
    ),
    "sub": _Op(
        tuple(range(1, 13)),
        ("subtract {c}", "subtract {c} from it", "decrease it by {c}"),
        "subtract {c}.",
        lambda e, c: f"{e} - {c}",
        lambda c: f"r -= {c}",
        lambda x, c: x - c,
    ),
    "mul": _Op(
        tuple(range(2, 10)),
        ("multiply it by {c}", "multiply by {c}", "scale it by {c}"),
        "multiply by {c}.",
        lambda e, c: f"{e} * {c}",
        lambda c: f"r *= {c}",
        lambda x, c: x * c,
    ),
    "fdiv": _Op(
        tuple(range(2, 10)),
        ("floor-divide it by {c}", "divide it by {c}, rounding down", "integer-divide by {c}, rounding down"),
        "divide by {c}, rounding down (floor division).",
        lambda e, c: f"{e} // {c}",
        lambda c: f"r //= {c}",
        lambda x, c: x // c,
    ),
    "mod": _Op(
        tuple(range(2, 10)),
        ("take the remainder modulo {c}", "reduce it modulo {c}", "take the remainder after dividing by {c}"),
        "take the remainder after dividing by {c}.",
        lambda e, c: f"{e} % {c}",
        lambda c: f"r %= {c}",
        lambda x, c: x % c,
    ),
    "square": _Op(
        (),
        ("square it", "multiply it by itself"),
        "square the value.",
        lambda e, c: f"{e} ** 2",
        lambda c: "r = r * r",
        lambda x, c: x * x,
    ),
    "abs": _Op(
        (),
        ("take its absolute value", "drop its sign"),
        "take the absolute value.",
        lambda e, c: f"abs({e})",
        lambda c: "r = abs(r)",
        lambda x, c: abs(x),
    ),
}

_POINTLESS = {("square", "abs"), ("abs", "square"), ("mod", "abs")}
"""Pairs where one step can never change the result (a square or a remainder is never negative)."""

STRUCTURES: tuple[Structure, ...] = tuple(
    [(op,) for op in _OPS]
    + [(a, b) for a, b in product(_OPS, _OPS) if a != b and (a, b) not in _POINTLESS]
)

COMP_HELDOUT = frozenset(
    {
        ("mul", "mod"),
        ("add", "square"),
        ("fdiv", "sub"),
        ("abs", "mul"),
        ("sub", "fdiv"),
        ("square", "mod"),
        ("mod", "add"),
        ("mul", "abs"),
    }
)


def _bind(structure: Structure, consts: Constants) -> list[tuple[str, _Op, int]]:
    return bind_steps(structure, consts, _OPS, 0)


def _solve(steps: list[tuple[str, _Op, int]], x: int) -> int:
    for _, op, c in steps:
        x = op.apply(x, c)
    return x


_INPUTS = range(-20, 41)


def _meaningful(structure: Structure, consts: Constants) -> bool:
    """Reject constants that collapse the chain to the identity (`x * 3 // 3`, `x + 4 - 4`), to
    (nearly) a constant (`x % 3 // 5`, `x % 6 // 5`), or to one of its steps (`abs(x % 4)`): the
    prompt would describe work that no test can check."""
    steps = _bind(structure, consts)
    outputs = [_solve(steps, x) for x in _INPUTS]
    if len(set(outputs)) <= 2 or outputs == list(_INPUTS):
        return False
    return len(steps) == 1 or all(outputs != [_solve([step], x) for x in _INPUTS] for step in steps)


def constants(structure: Structure) -> list[Constants]:
    ranges = [_OPS[op].consts for op in structure if _OPS[op].consts]
    return [c for c in product(*ranges) if _meaningful(structure, c)]


def _expression(steps: list[tuple[str, _Op, int]], x: str) -> str:
    """Fully bracketed, so the written order is the evaluation order whatever the operators."""
    expr, compound = x, False
    for name, op, c in steps:
        operand = expr if name == "abs" else _atom(expr, compound)
        expr, compound = op.expr(operand, c), name != "abs"
    return expr


_PROMPTS = (
    "Write a Python function `{f}({x})`. Given an integer `{x}`, {steps}; return the result.",
    "Implement `{f}({x})`: start from the integer `{x}`, {steps}. Return the final value.",
    "Define a function `{f}` with one integer parameter `{x}`. "
    "It should take `{x}`, {steps}, and return what it gets.",
)


def draft(rng: random.Random, structure: Structure, consts: Constants) -> Draft:
    steps = _bind(structure, consts)
    f = function_name(rng)
    x = rng.choice(("x", "n", "num", "val", "k", "a", "m", "v", "z", "value"))
    phrases = [rng.choice(op.phrases).format(c=c) for _, op, c in steps]
    phrasing = rng.randrange(len(_PROMPTS))
    prompt = _PROMPTS[phrasing].format(f=f, x=x, steps=", then ".join(phrases))

    style = rng.choice(("expr", "steps"))
    said = [op.thought.format(c=c) for _, op, c in steps]
    thoughts = [f"First {said[0]}", f"Then {said[1]}"] if len(said) > 1 else [said[0][0].upper() + said[0][1:]]
    if style == "expr":
        thoughts.append(
            "Bracket the first step so it happens first, all in one return."
            if len(steps) > 1
            else "Return that directly as one expression."
        )
        body = [f"return {_expression(steps, x)}"]
    else:
        thoughts.append("Apply one step per line to a result variable, then return it.")
        body = [f"r = {_expression(steps[:1], x)}"]
        body += [op.stmt(c) for _, op, c in steps[1:]]
        body.append("return r")
    code = render([f"def {f}({x}):", *indent(body)])

    cases = [(v, _solve(steps, v)) for v in rng.sample(_INPUTS, 14)]
    n_public, n_hidden = n_tests(rng)
    public, hidden = split_cases(rng, cases, n_public, n_hidden)
    return Draft(prompt, tuple(thoughts), code, f, call_tests(f, public), call_tests(f, hidden), phrasing, style)


SPEC = FamilySpec("arith", STRUCTURES, COMP_HELDOUT, constants, draft, ("expr", "steps"))
