"""Boost end to end on a real local Ray cluster: two tiny agents, the real sandbox, storage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bdc_ray.artifacts.traces import finished_ids, read_traces
from bdc_ray.boost import StaleTracesError
from bdc_ray.config import load_config
from tests.boost.support import boost
from tests.conftest import ROOT, cluster_address

N_PROBLEMS = 6


@pytest.fixture(scope="module")
def overrides(tmp_path_factory, tiny_agents) -> dict:
    root = tmp_path_factory.mktemp("boost")
    return {
        "storage_path": str(root / "runs"),
        "data": {"synthetic": {"train_per_family": 2, "heldout_per_family": 1, "heldout_comp_per_family": 1}},
        "models": tiny_agents,
        "resources": {"sandbox": {"num_cpus": 0.5}},
        "sandbox": {"workers_per_actor": 1, "limits": {"time_s": 2, "program_time_s": 10}},
        "stages": {"boost": {"max_problems": N_PROBLEMS, "max_concurrent_problems": 3,
                             "search": {"rollouts": 2, "width": 2, "n_sim": 1, "max_depth": 2}}},
    }


def test_two_tiny_agents_search_and_resume(ray_local, overrides):
    cfg = load_config(overrides={**overrides, "run_name": "e2e"})
    summary = boost(cfg)
    out = Path(cfg.layout.boost_dir)
    records = read_traces(str(out / "traces"))
    assert summary["problems"] == len(records) == N_PROBLEMS
    for r in records:
        assert set(r.llm_generations) == {"tiny-a", "tiny-b"}  # both agents worked on every problem
        assert r.evaluations and 0.0 <= r.public_pass_rate <= 1.0
        # completion agents expand by continuations that carry their programs; the anytime list ends at the answer
        assert r.generations_by_kind["continuation"] > 0 and "thought" not in r.generations_by_kind
        assert sum(r.generations_by_kind.values()) == sum(r.llm_generations.values())
        assert r.anytime[-1].program == r.best_program and r.anytime[-1].reward == r.public_pass_rate
        assert r.solved_by in (("root", "tree") if r.solved_public else (None,))
        assert r.hidden_status is not None
    sft = [json.loads(line) for line in (out / "sft.jsonl").read_text().splitlines()]
    solved = {r.problem_id for r in records if r.hidden_passed_all}
    assert {row["problem_id"] for row in sft} == solved
    assert all(row["task"] in ("p2t", "t2c") for row in sft)
    assert (out / "preferences.jsonl").exists()

    # Resume: drop two finished problems; a re-run searches exactly those and nothing twice.
    files = sorted((out / "traces").glob("*.jsonl"))
    kept_mtimes = {f: f.stat().st_mtime_ns for f in files[2:]}
    for f in files[:2]:
        f.unlink()
    boost(cfg)
    assert all(f.stat().st_mtime_ns == m for f, m in kept_mtimes.items())
    again = read_traces(str(out / "traces"))
    assert sorted(r.problem_id for r in again) == sorted(r.problem_id for r in records)
    # another search in the same run folder is refused before any agent starts, and nothing is lost
    wider = {**overrides["stages"]["boost"], "search": {**overrides["stages"]["boost"]["search"], "width": 3}}
    with pytest.raises(StaleTracesError, match="other search parameters"):
        boost(load_config(overrides={**overrides, "run_name": "e2e", "stages": {"boost": wider}}))
    assert len(read_traces(str(out / "traces"))) == N_PROBLEMS


def test_killed_driver_loses_only_unfinished_problems(ray_local, overrides, tmp_path):
    """SIGKILL a `bdc boost` driver mid-run, run the stage again (here, on the same cluster): every problem exactly once."""
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump({**overrides, "run_name": "killed"}))
    cfg = load_config(cfg_file)
    traces = Path(cfg.layout.traces_dir)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ADDRESS": cluster_address()}
    cmd = [sys.executable, "-m", "bdc_ray.cli", "boost", "--config", str(cfg_file)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(finished_ids(str(traces))) < 2:
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = finished_ids(str(traces))
    assert 0 < len(before) <= N_PROBLEMS
    boost(cfg)
    lines = [line for f in traces.glob("*.jsonl") for line in f.read_text().splitlines()]
    ids = [json.loads(line)["problem_id"] for line in lines]
    assert len(ids) == len(set(ids)) == N_PROBLEMS
    assert before <= set(ids)


def test_run_completes_when_the_node_hosting_the_agents_dies(overrides, tmp_path):
    """2+1 nodes: agents live on node A; A is killed mid-run; actors restart on B; nothing is lost.

    The cluster and its driver run in a child process (tests/boost/node_loss.py): a second Ray
    session in the test process would crash it at exit (tests/conftest.py, `ray_local`)."""
    cfg_file, result_file = tmp_path / "cfg.yaml", tmp_path / "result.json"
    cfg_file.write_text(yaml.safe_dump({
        **overrides,
        "run_name": "node-loss",
        "models": {**overrides["models"], "agents": [
            {**a, "resources": {"num_cpus": 0.5, "resources": {"agent_slot": 1}}} for a in overrides["models"]["agents"]
        ]},
    }))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "tests.boost.node_loss", str(cfg_file), str(result_file)],
                   env=env, cwd=ROOT, check=True, timeout=1200)
    result = json.loads(result_file.read_text())
    assert result["removed_while_running"], "the run finished before the node could be removed"
    assert result["finished"]
    summary = result["summary"]
    assert summary["problems"] == N_PROBLEMS and summary["errors"] == 0
    assert len(finished_ids(load_config(cfg_file).layout.traces_dir)) == N_PROBLEMS
