"""Deterministic public/hidden split of a problem's tests.

The split depends only on the problem id and the test index (a SHA-256 hash), so every
machine, every run and every stage agrees on it without storing it anywhere.
"""

from __future__ import annotations

import hashlib
from typing import Sequence, TypeVar

T = TypeVar("T")


def _rank(problem_id: str, index: int) -> str:
    return hashlib.sha256(f"{problem_id}\x00{index}".encode()).hexdigest()


def split_tests(problem_id: str, tests: Sequence[T], public_fraction: float = 0.5) -> tuple[list[T], list[T]]:
    """Split `tests` into (public, hidden), about `public_fraction` public.

    With two or more tests each side gets at least one. A single test goes to the hidden
    side: a problem with one test has nothing to reward a search with without leaking it.
    Order inside each side follows the original order.
    """
    if not 0.0 < public_fraction < 1.0:
        raise ValueError(f"public_fraction must be in (0, 1), got {public_fraction}")
    n = len(tests)
    if n < 2:
        return [], list(tests)
    n_public = min(n - 1, max(1, round(n * public_fraction)))
    order = sorted(range(n), key=lambda i: _rank(problem_id, i))
    public_idx = set(order[:n_public])
    public = [t for i, t in enumerate(tests) if i in public_idx]
    hidden = [t for i, t in enumerate(tests) if i not in public_idx]
    return public, hidden
