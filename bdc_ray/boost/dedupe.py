"""Merging near-duplicate thoughts, so several agents saying the same thing cost one branch."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Iterable, Sequence

from bdc_ray.boost.interfaces import Proposal


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower().rstrip("."))


def similarity(a: str, b: str) -> float:
    return SequenceMatcher(None, normalize(a), normalize(b), autojunk=False).ratio()


def assign_groups(texts: Sequence[str], threshold: float, existing: Sequence[str] = ()) -> list[int | None]:
    """The group of each text: the index of the first `existing` text it is `threshold`-similar
    to, else of the first earlier new text it is similar to (new groups are numbered after the
    existing ones, in order of appearance); None for an empty text."""
    representatives = list(existing)
    groups: list[int | None] = []
    for text in texts:
        if not text.strip():
            groups.append(None)
            continue
        match = next((i for i, r in enumerate(representatives) if r.strip() and similarity(text, r) >= threshold), None)
        if match is None:
            representatives.append(text)
            match = len(representatives) - 1
        groups.append(match)
    return groups


def merge_near_duplicates(
    proposals: Iterable[tuple[str, Proposal]], threshold: float, existing: Sequence[str] = ()
) -> list[tuple[str, Proposal]]:
    """Keep the first of each group of (agent, proposal) whose texts are `threshold`-similar.

    A kept proposal takes the highest prior of the ones merged into it (several agents
    agreeing is evidence); proposals similar to an `existing` sibling thought are dropped.
    """
    items = list(proposals)
    groups = assign_groups([p.text for _, p in items], threshold, existing)
    kept: dict[int, tuple[str, Proposal]] = {}
    for (agent, prop), group in zip(items, groups):
        if group is None or group < len(existing):
            continue
        if group not in kept:
            kept[group] = (agent, prop)
        else:
            first_agent, first = kept[group]
            kept[group] = (first_agent, Proposal(first.text, max(first.prior, prop.prior)))
    return [kept[g] for g in sorted(kept)]


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
