"""Stdin/stdout scripts: read integers in one of three layouts, compute, print.

The input layout and the computation are separate axes, so the compositional held-out set
pairs a computation with a layout it was never trained with. Outputs are exactly what
`print` writes, trailing newline included.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import product
from typing import Callable

from bdc_ray.problems.synth_families.base import (
    Constants, Draft, FamilySpec, Structure, n_tests, render, split_cases,
)
from bdc_ray.problems.types import StdioTest

_LAYOUTS = {
    "line": "The input is one line of integers separated by spaces.",
    "count": "The first line of input holds a count n; the second line holds n integers separated by spaces.",
    "lines": "The first line of input holds a count n; each of the next n lines holds one integer.",
}


@dataclass(frozen=True)
class _Op:
    consts: tuple[int, ...]
    says: str
    thought: str
    loop: Callable[[int], list[str]]
    """Lines that print the answer for the list `nums` and constant `c`, with explicit loops."""
    builtin: Callable[[int], list[str]]
    apply: Callable[[list[int], int], int | list[int]]


def _scan(better: str) -> list[str]:
    return ["best = nums[0]", "for v in nums:", f"    if v {better} best:", "        best = v", "print(best)"]


_OPS: dict[str, _Op] = {
    "sum": _Op(
        (), "Print their sum.", "add them all up.",
        lambda c: ["total = 0", "for v in nums:", "    total += v", "print(total)"],
        lambda c: ["print(sum(nums))"],
        lambda xs, c: sum(xs),
    ),
    "max": _Op(
        (), "Print the largest of them.", "find the largest one.",
        lambda c: _scan(">"), lambda c: ["print(max(nums))"], lambda xs, c: max(xs),
    ),
    "min": _Op(
        (), "Print the smallest of them.", "find the smallest one.",
        lambda c: _scan("<"), lambda c: ["print(min(nums))"], lambda xs, c: min(xs),
    ),
    "sorted": _Op(
        (), "Print them in ascending order on one line, separated by spaces.", "sort them in ascending order.",
        lambda c: ["nums.sort()", 'print(" ".join(str(v) for v in nums))'],
        lambda c: ["print(*sorted(nums))"],
        lambda xs, c: sorted(xs),
    ),
    "count_gt": _Op(
        tuple(range(-2, 11)), "Print how many of them are greater than {c}.", "count those strictly above {c}.",
        lambda c: ["count = 0", "for v in nums:", f"    if v > {c}:", "        count += 1", "print(count)"],
        lambda c: [f"print(sum(1 for v in nums if v > {c}))"],
        lambda xs, c: sum(1 for x in xs if x > c),
    ),
    "sum_ge": _Op(
        tuple(range(-2, 11)), "Print the sum of those that are at least {c} (0 if there are none).",
        "add up those that are {c} or more.",
        lambda c: ["total = 0", "for v in nums:", f"    if v >= {c}:", "        total += v", "print(total)"],
        lambda c: [f"print(sum(v for v in nums if v >= {c}))"],
        lambda xs, c: sum(x for x in xs if x >= c),
    ),
    "add": _Op(
        tuple(range(1, 13)), "Print each of them increased by {c}, in input order, on one line separated by spaces.",
        "add {c} to each one, keeping the order.",
        lambda c: ["out = []", "for v in nums:", f"    out.append(str(v + {c}))", 'print(" ".join(out))'],
        lambda c: [f"print(*[v + {c} for v in nums])"],
        lambda xs, c: [x + c for x in xs],
    ),
    "mul": _Op(
        tuple(range(2, 10)), "Print each of them multiplied by {c}, in input order, on one line separated by spaces.",
        "multiply each one by {c}, keeping the order.",
        lambda c: ["out = []", "for v in nums:", f"    out.append(str(v * {c}))", 'print(" ".join(out))'],
        lambda c: [f"print(*[v * {c} for v in nums])"],
        lambda xs, c: [x * c for x in xs],
    ),
}

STRUCTURES: tuple[Structure, ...] = tuple(product(_LAYOUTS, _OPS))

COMP_HELDOUT = frozenset({("line", "sum_ge"), ("count", "max"), ("lines", "mul"), ("lines", "sorted")})


def constants(structure: Structure) -> list[Constants]:
    return [(c,) for c in _OPS[structure[1]].consts] or [()]


def _read(layout: str, style: str) -> tuple[list[str], list[str]]:
    """(imports, lines) that leave the integers in list `nums`: `input()` per line, or all of stdin."""
    if style == "builtin":
        skip = "" if layout == "line" else "[1:]"
        return ["import sys", ""], [f"nums = [int(t) for t in sys.stdin.read().split(){skip}]"]
    if layout == "line":
        return [], [f"nums = list(map(int, input().split()))"]
    if layout == "count":
        return [], ["n = int(input())", f"nums = list(map(int, input().split()))"]
    return [], ["n = int(input())", f"nums = []", "for _ in range(n):", f"    nums.append(int(input()))"]


def _stdin(layout: str, values: list[int]) -> str:
    if layout == "line":
        return " ".join(map(str, values)) + "\n"
    if layout == "count":
        return f"{len(values)}\n" + " ".join(map(str, values)) + "\n"
    return f"{len(values)}\n" + "".join(f"{v}\n" for v in values)


def _stdout(result: int | list[int]) -> str:
    return (" ".join(map(str, result)) if isinstance(result, list) else str(result)) + "\n"


_PROMPTS = (
    "Write a Python program that reads standard input. {layout} {op}",
    "Read integers from stdin and write the answer to stdout. {layout} {op}",
    "{layout} {op} Write the complete program.",
)

_READ_THOUGHTS = {
    "line": "Read the one line and turn each piece into an int.",
    "count": "Read n first, then the line of n integers.",
    "lines": "Read n first, then n more lines with one integer each.",
}


def draft(rng: random.Random, structure: Structure, consts: Constants) -> Draft:
    layout, op_name = structure
    op, c = _OPS[op_name], consts[0] if consts else 0
    phrasing = rng.randrange(len(_PROMPTS))
    prompt = _PROMPTS[phrasing].format(layout=_LAYOUTS[layout], op=op.says.format(c=c))

    style = rng.choice(("loop", "builtin"))
    imports, reading = _read(layout, style)
    compute = (op.loop if style == "loop" else op.builtin)(c)
    code = render([*imports, *reading, *compute])
    thoughts = (
        "Everything is whitespace-separated, so read all of stdin at once."
        if style == "builtin"
        else _READ_THOUGHTS[layout],
        f"Then {op.thought.format(c=c)}",
        "Print the numbers on one line with single spaces."
        if op_name in ("sorted", "add", "mul")
        else "Print the single number.",
    )

    def case(values: list[int]) -> tuple[str, str]:
        return _stdin(layout, values), _stdout(op.apply(values, c))

    boundary = []
    if op_name in ("count_gt", "sum_ge"):
        # The threshold with smaller numbers only: it alone decides between `>` and `>=`.
        edge = [c - rng.randint(1, 6) for _ in range(rng.randint(0, 3))]
        edge.insert(rng.randrange(len(edge) + 1), c)
        boundary = [case(edge)]
    cases = []
    for _ in range(14):
        values = [rng.randint(-9, 20) for _ in range(rng.randint(1, 7))]
        if op.consts and rng.random() < 0.3:
            values.insert(rng.randrange(len(values) + 1), c)
        cases.append(case(values))
    cases = [item for item in dict(cases).items() if item not in boundary]
    n_public, n_hidden = n_tests(rng)
    public, hidden = split_cases(rng, cases, n_public, n_hidden, hidden_first=boundary)
    return Draft(
        prompt,
        thoughts,
        code,
        None,
        tuple(StdioTest(input=i, output=o) for i, o in public),
        tuple(StdioTest(input=i, output=o) for i, o in hidden),
        phrasing,
        style,
    )


SPEC = FamilySpec("io", STRUCTURES, COMP_HELDOUT, constants, draft, ("loop", "builtin"))
