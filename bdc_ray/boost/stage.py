"""`bdc boost`: the Boost stage from a config, on whatever Ray cluster the process joins."""

from __future__ import annotations

import logging
from itertools import zip_longest
from typing import Any

import ray

from bdc_ray import storage
from bdc_ray.boost.prompts import PromptBook
from bdc_ray.boost.runner import AgentHandle, BoostRunner
from bdc_ray.config import BDCConfig
from bdc_ray.sandbox.ray_pool import make_pool
from bdc_ray.llm.actors import start_llm_actor
from bdc_ray.llm.agent_config import resolve_backends
from bdc_ray.problems.loaders import load_problems
from bdc_ray.problems.suite_files import read_split
from bdc_ray.problems.types import Problem
from bdc_ray.ray_session import init_ray

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic:"
SETTINGS_FILE = "settings.json"
LABELS = {"agents": "agents", "search": "search parameters"}


class StaleTracesError(ValueError):
    """A run folder's traces were searched with other agents or search settings."""


def search_settings(cfg: BDCConfig) -> dict[str, Any]:
    """What decides a trace: every agent's model, style and prompts, and the search parameters
    (not resources, replicas or concurrency, which only change how fast it is found)."""
    return {
        "agents": [a.model_dump(mode="json", exclude={"replicas", "resources", "batch_window_ms"}) for a in cfg.models.agents],
        "search": cfg.stages.boost.search.model_dump(mode="json"),
    }


def claim_traces(out_dir: str, settings: dict[str, Any]) -> None:
    """Resume only traces of the same settings: mixing two searches would make one SFT set of
    both, so a changed setting is refused (nothing is deleted) and the first search recorded."""
    path = storage.join(out_dir, SETTINGS_FILE)
    if not storage.exists(path):
        storage.write_json_atomic(path, settings)
        return
    stored = storage.read_json(path)
    changed = sorted(k for k in settings if stored.get(k) != settings[k])
    if changed:
        raise StaleTracesError(
            f"{out_dir} holds traces searched with other {' and other '.join(LABELS[k] for k in changed)} "
            f"(recorded in {path}); "
            "use another run_name, or delete that folder to search again"
        )


def boost_dir(cfg: BDCConfig) -> str:
    return storage.join(cfg.run_dir, "boost")


def load_stage_problems(cfg: BDCConfig, source: str, fmt: str | None = None) -> list[Problem]:
    """`synthetic:<split>` reads (or first writes) the run's suite; anything else is a problem file."""
    if source.startswith(SYNTHETIC):
        return read_split(cfg.data.synthetic, storage.join(cfg.run_dir, "data"), source[len(SYNTHETIC) :])
    problems, _ = load_problems(source, fmt)
    return problems


def first_per_group(problems: list[Problem], limit: int | None) -> list[Problem]:
    """The first `limit` problems taken round-robin across families (sources when unlabelled).

    Problem files and the synthetic suite list problems grouped by family, so a plain prefix
    would boost one family only and leave Disentangle nothing to tell apart.
    """
    if limit is None or limit >= len(problems):
        return list(problems)
    groups: dict[str, list[Problem]] = {}
    for p in problems:
        groups.setdefault(p.family or p.source, []).append(p)
    order = [p for rank in zip_longest(*groups.values()) for p in rank if p is not None]
    return order[:limit]


def start_agents(cfg: BDCConfig) -> list[AgentHandle]:
    if not cfg.models.agents:
        raise ValueError("models.agents is empty: Boost needs at least one agent (two or more for mutual boosting)")
    backends = resolve_backends(cfg.models.agents, cfg.models.build_root)
    handles = []
    for agent in cfg.models.agents:
        actors = [
            start_llm_actor(backends[agent.name], agent.resources.ray_options(), window_s=agent.batch_window_ms / 1000)
            for _ in range(agent.replicas)
        ]
        handles.append(AgentHandle(agent.name, PromptBook(style=agent.style, **agent.prompts.model_dump()), actors))
    ray.get([a.ready.remote() for h in handles for a in h.actors])
    return handles


def run_boost_stage(cfg: BDCConfig) -> dict[str, Any]:
    init_ray(cfg.ray)
    stage = cfg.stages.boost
    problems = first_per_group(load_stage_problems(cfg, stage.problems, stage.format), stage.max_problems)
    claim_traces(boost_dir(cfg), search_settings(cfg))
    agents = start_agents(cfg)
    pool = make_pool(cfg.sandbox, cfg.resources.sandbox.ray_options())
    try:
        runner = BoostRunner(
            agents=agents,
            executor=pool,
            search=stage.search,
            out_dir=boost_dir(cfg),
            max_concurrent_problems=stage.max_concurrent_problems,
            max_attempts=stage.max_attempts,
        )
        return runner.run(problems)
    finally:
        pool.shutdown()
        for handle in agents:
            for actor in handle.actors:
                ray.kill(actor)
