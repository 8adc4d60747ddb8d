"""What a stage holds at once against the cluster: an error on a cluster that cannot grow, a
warning on one that may, and the stages asking before they start anything."""

from __future__ import annotations

import logging

import pytest

from bdc_ray import ray_session
from bdc_ray.config import load_config
from bdc_ray.ray_session import ClusterTooSmall, require_at_once, shortfall
from bdc_ray.resources import ResourceSpec


def test_shortfall_sums_every_held_actor() -> None:
    held = [("models.agents.0.resources", ResourceSpec(num_cpus=1), 2),
            ("resources.sandbox", ResourceSpec(num_cpus=0.5, resources={"cpu_node": 0.01}), 1)]
    assert shortfall(held, {"CPU": 2.5, "cpu_node": 1}) == {}
    assert shortfall(held, {"CPU": 2, "cpu_node": 1}) == {"CPU": (2.5, 2)}
    assert shortfall(held, {"CPU": 4}) == {"cpu_node": (0.01, 0.0)}


def test_a_cluster_that_cannot_grow_refuses_naming_the_keys(ray_local, caplog) -> None:
    held = [("models.agents.0.resources", ResourceSpec(num_cpus=1), 1),
            ("models.agents.1.resources", ResourceSpec(num_cpus=1), 1),
            ("resources.sandbox", ResourceSpec(num_cpus=0.5), 1)]  # the session's cluster has 2 CPUs
    with pytest.raises(ClusterTooSmall) as refused:
        require_at_once("boost", held, can_grow=False)
    for words in ("models.agents.0.resources", "models.agents.1.resources", "resources.sandbox",
                  "CPU 2.5 asked, 2 in the cluster", "ray.num_cpus"):
        assert words in str(refused.value)
    with caplog.at_level(logging.WARNING, logger="bdc_ray.ray_session"):
        require_at_once("boost", held, can_grow=True)
    assert "autoscaler" in caplog.text
    require_at_once("boost", held[1:], can_grow=False)  # 1.5 of 2 CPUs: nothing to say


def test_boost_refuses_before_it_starts_an_agent(ray_local, tmp_path, tiny_agents, monkeypatch) -> None:
    import bdc_ray.boost.stage
    from tests.boost.support import boost

    greedy = [{**agent, "resources": {"num_cpus": 1}} for agent in tiny_agents["agents"]]
    cfg = load_config(overrides={"storage_path": str(tmp_path), "models": {**tiny_agents, "agents": greedy},
                                 "resources": {"sandbox": {"num_cpus": 0.5}}})
    monkeypatch.setattr(ray_session, "_started_here", True)  # as when `bdc run` started this cluster
    monkeypatch.setattr(bdc_ray.boost.stage, "start_agents", lambda models: pytest.fail("an agent was started"))
    with pytest.raises(ClusterTooSmall, match="models.agents.1.resources"):
        boost(cfg)


def test_eval_refuses_a_task_that_cannot_run_beside_the_sandbox(ray_local, tmp_path, monkeypatch) -> None:
    from bdc_ray.heldout import run_heldout_stage

    cfg = load_config(overrides={"storage_path": str(tmp_path), "resources": {"sandbox": {"num_cpus": 0.5}},
                                 "stages": {"eval": {"resources": {"num_cpus": 2}}}})
    monkeypatch.setattr(ray_session, "_started_here", True)
    with pytest.raises(ClusterTooSmall, match="stages.eval.resources"):
        run_heldout_stage(cfg.layout, cfg.stages.eval, cfg.suite, cfg.sandbox, cfg.resources.sandbox, cfg.models)
