"""What one problem's search can cost: LLM generations per agent and kind, counted the way
search.py grants them, in the worst case.

Why a worst case: how many thoughts merge as duplicates, how many children are pruned and how
soon a problem is solved depend on the models and the problems; the bound depends on the config
alone. `bdc plan` scales it by a measured share (bdc_ray/plan/throughput.py) to estimate what a
problem spends. The worst case is: no problem solved early, every proposed thought new, every
rollout an expansion (re-simulating a leaf costs fewer programs), every child pruned and refined
where its proposer refines.

With T the agents that propose bare thoughts (instruct-style, and completion-style ones when
`continuations` is off), C the agents that continue, I the thinkers that refine (instruct-style,
when `refine` is on), width w, n_sim n, cross_sim x and R rollouts, agent a writes per problem:

    thought       R * w                            if a in T
    continuation  R * w                            if a in C
    refine        R * w                            if a in I
    program       n                                at the root, if a in T and simulate_root
                  + R * n * w * (|T| + |I|)        every bare child and every refined one, by every agent
                  + R * x * w * (|C| - [a in C])   the other continuing agents' children (cross_sim)

A generation budget (`max_generations`) caps the total, each agent and kind keeping its share;
with no rollout cap the budget alone sets R. Merges (`merge_threshold`, off by default) are not
counted.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from bdc_ray.boost.config import SearchConfig

class Role(Protocol):
    """What of an agent decides its generations: the part of `interfaces.Agent` the search reads."""

    name: str
    continues: bool
    refines: bool


def worst_case_generations(search: SearchConfig, agents: Sequence[Role]) -> dict[str, dict[str, float]]:
    """{agent: {kind: generations}} of one problem, at most (see the module docstring)."""
    continuing = {a.name: search.continuations and a.continues for a in agents}
    thinkers = [a.name for a in agents if not continuing[a.name]]
    refiners = [a.name for a in agents if not continuing[a.name] and a.refines and search.refine]
    w, n, x = search.width, search.n_sim, search.cross_sim
    others = sum(continuing.values())
    per_rollout = {
        a.name: {
            "thought": w * (a.name in thinkers),
            "continuation": w * continuing[a.name],
            "refine": w * (a.name in refiners),
            "program": n * w * (len(thinkers) + len(refiners)) + x * w * (others - continuing[a.name]),
        }
        for a in agents
    }
    root = {a.name: n * (search.simulate_root and a.name in thinkers) for a in agents}
    per_total = sum(sum(kinds.values()) for kinds in per_rollout.values())
    rollouts = search.rollouts
    if rollouts is None:  # the budget alone ends the search (the config refuses neither being set)
        rollouts = max(0.0, search.max_generations - sum(root.values())) / per_total  # type: ignore[operator]
    counts = {
        name: {kind: rollouts * amount + (root[name] if kind == "program" else 0) for kind, amount in kinds.items()}
        for name, kinds in per_rollout.items()
    }
    total = sum(sum(kinds.values()) for kinds in counts.values())
    if search.max_generations is not None and total > search.max_generations:
        scale = search.max_generations / total
        counts = {name: {kind: c * scale for kind, c in kinds.items()} for name, kinds in counts.items()}
    return counts
