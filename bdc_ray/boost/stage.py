"""The Boost stage on a run folder: agents and sandbox pool started, every problem searched.

Takes its own section (`stages.boost`), the `models:` section its agents come from, the sandbox
settings and the run's suite (for `synthetic:` sources); the caller has joined the Ray cluster.
"""

from __future__ import annotations

import logging
from itertools import zip_longest
from typing import Any

import ray

from bdc_ray import storage
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.artifacts.traces import finished_ids
from bdc_ray.boost.config import SYNTHETIC, BoostStage, SearchConfig
from bdc_ray.boost.prompts import PromptBook
from bdc_ray.boost.runner import AgentHandle, BoostRunner, export_traces
from bdc_ray.llm.actors import start_llm_actor
from bdc_ray.models import AgentConfig, ModelsSection, resolve_backends
from bdc_ray.problems.loaders import load_problems
from bdc_ray.problems.suite_files import SuiteFolder
from bdc_ray.problems.types import Problem
from bdc_ray.ray_session import require_at_once
from bdc_ray.resources import ResourceSpec
from bdc_ray.sandbox.ray_pool import make_pool, pool_actors
from bdc_ray.sandbox.section import SandboxSection
from bdc_ray.timing import in_stage, phase, record

log = logging.getLogger(__name__)

LABELS = {"agents": "agents", "search": "search parameters"}


class StaleTracesError(ValueError):
    """A run folder's traces were searched with other agents or search settings."""


def search_settings(agents: list[AgentConfig], search: SearchConfig) -> dict[str, Any]:
    """What decides a trace: every agent's model, style and prompts, and the search parameters
    (not resources, replicas or concurrency, which only change how fast it is found)."""
    return {
        "agents": [a.model_dump(mode="json", exclude={"replicas", "resources", "batch_window_ms"}) for a in agents],
        "search": search.model_dump(mode="json"),
    }


def claim_traces(layout: RunLayout, settings: dict[str, Any]) -> None:
    """Resume only traces of the same settings: mixing two searches would make one SFT set of
    both, so a changed setting is refused (nothing is deleted) and the first search recorded."""
    path = layout.boost_settings
    if not storage.exists(path):
        storage.write_json_atomic(path, settings)
        return
    stored = storage.read_json(path)
    changed = sorted(k for k in settings if stored.get(k) != settings[k])
    if changed:
        raise StaleTracesError(
            f"{layout.boost_dir} holds traces searched with other {' and other '.join(LABELS[k] for k in changed)} "
            f"(recorded in {path}); "
            "use another run_name, or delete that folder to search again"
        )


def load_stage_problems(section: BoostStage, suite: SuiteFolder) -> list[Problem]:
    """`synthetic:<split>` reads (or first writes) the run's suite; anything else is a problem file."""
    if section.problems.startswith(SYNTHETIC):
        return suite.read(section.problems[len(SYNTHETIC) :])
    problems, _ = load_problems(section.problems, section.format)
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


def start_agents(models: ModelsSection) -> list[AgentHandle]:
    if not models.agents:
        raise ValueError("models.agents is empty: Boost needs at least one agent (two or more for mutual boosting)")
    with phase("agent models built, converted or reused"):
        backends = resolve_backends(models.agents, models.build_root)
    handles = []
    with phase("agent actors started, models loaded"):
        for agent in models.agents:
            actors = [
                start_llm_actor(backends[agent.name], agent.resources.ray_options(), window_s=agent.batch_window_ms / 1000)
                for _ in range(agent.replicas)
            ]
            handles.append(AgentHandle(agent.name, PromptBook(style=agent.style, **agent.prompts.model_dump()), actors))
        loads = ray.get([a.load_seconds.remote() for h in handles for a in h.actors])
    owners = [h.name for h in handles for _ in h.actors]
    for name, seconds in zip(owners, loads):
        record("agent backend import + model load, in its actor", seconds, unit=name)
    return handles


@in_stage("boost")
def run_boost_stage(
    layout: RunLayout,
    section: BoostStage,
    models: ModelsSection,
    sandbox: SandboxSection,
    sandbox_resources: ResourceSpec,
    suite: SuiteFolder,
) -> dict[str, Any]:
    """Search every problem of the section (finished ones are skipped); returns the summary."""
    problems = first_per_group(load_stage_problems(section, suite), section.max_problems)
    claim_traces(layout, search_settings(models.agents, section.search))
    if {p.id for p in problems} <= finished_ids(layout.traces_dir):
        # a re-run of a finished stage: no teacher is loaded (minutes per 7B model on a cluster)
        log.info("boost: all %d problems were searched before; no agent started", len(problems))
        return export_traces(layout)
    require_at_once("boost", [*((f"models.agents.{i}.resources", a.resources, a.replicas) for i, a in enumerate(models.agents)),
                              ("resources.sandbox", sandbox_resources, pool_actors(sandbox))])
    agents = start_agents(models)  # tiny models are built first, while the pool holds no CPU
    pool = make_pool(sandbox, sandbox_resources.ray_options())
    try:
        runner = BoostRunner(
            agents=agents,
            executor=pool,
            search=section.search,
            layout=layout,
            max_concurrent_problems=section.max_concurrent_problems,
            max_attempts=section.max_attempts,
        )
        return runner.run(problems)
    finally:
        pool.shutdown()
        for handle in agents:
            for actor in handle.actors:
                ray.kill(actor)
