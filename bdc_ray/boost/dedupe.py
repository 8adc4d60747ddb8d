"""Merging near-duplicate thoughts, so several agents saying the same thing cost one branch."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Iterable

from bdc_ray.boost.interfaces import Proposal


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower().rstrip("."))


def similarity(a: str, b: str) -> float:
    return SequenceMatcher(None, normalize(a), normalize(b), autojunk=False).ratio()


def merge_near_duplicates(
    proposals: Iterable[tuple[str, Proposal]], threshold: float, existing: Iterable[str] = ()
) -> list[tuple[str, Proposal]]:
    """Keep the first of each group of (agent, proposal) whose texts are `threshold`-similar.

    A kept proposal takes the highest prior of the ones merged into it (several agents
    agreeing is evidence); proposals similar to an `existing` sibling thought are dropped.
    """
    kept: list[tuple[str, Proposal]] = []
    seen = [t for t in existing if t.strip()]
    for agent, prop in proposals:
        if not prop.text.strip() or any(similarity(prop.text, t) >= threshold for t in seen):
            continue
        twin = next((i for i, (_, k) in enumerate(kept) if similarity(prop.text, k.text) >= threshold), None)
        if twin is None:
            kept.append((agent, prop))
        else:
            first_agent, first = kept[twin]
            kept[twin] = (first_agent, Proposal(first.text, max(first.prior, prop.prior)))
    return kept


def similar_pairs(texts: list[str], low: float, high: float) -> list[tuple[int, int]]:
    """Disjoint index pairs whose similarity is in [low, high), most similar first."""
    scored = sorted(
        ((similarity(texts[i], texts[j]), i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))),
        reverse=True,
    )
    used: set[int] = set()
    pairs = []
    for score, i, j in scored:
        if low <= score < high and i not in used and j not in used:
            used.update((i, j))
            pairs.append((i, j))
    return pairs
