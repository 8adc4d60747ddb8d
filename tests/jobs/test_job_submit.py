"""Jobs submitted the way a cluster user submits them: `ray start --head`, `ray job submit`.

One head, shared by both jobs, runs on loopback with its own temp dir and ports
(tests/jobs/local_head.py) and is stopped by its own pids, never with the machine-wide `ray stop`.
Each job uploads the repository as its working dir (without .git, .venv, runs), builds the tiny agents on first use on the
cluster and writes its artifacts to the config's storage_path, which the test reads back: Boost
on two synthetic problems (jobs/boost.py), then the pipeline from disentangle on
(jobs/pipeline.py --from disentangle) on SFT rows in Boost's format, since the barely trained
test agents verify too few problems to cluster.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest
import yaml

from tests.conftest import LATER_STAGES, ROOT, seed_sft_rows
from tests.jobs.local_head import LocalHead

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ENTRYPOINT = ["python", "jobs/boost.py"]
UPLOAD_EXCLUDES = [".git", ".venv", "runs", "__pycache__", "*.egg-info", ".pytest_cache"]
JOB_TIMEOUT_S = 1500.0
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def job_config(tmp_path: Path, models: dict) -> dict:
    """The smallest run that still exercises every path: two problems, one rollout, one program each."""
    return {
        "run_name": "submitted",
        "storage_path": str(tmp_path / "runs"),
        "ray": {"address": None},  # the driver joins the job's cluster through RAY_ADDRESS
        "data": {"synthetic": {"train_per_family": 2, "heldout_per_family": 1, "heldout_comp_per_family": 1}},
        "models": models,
        "resources": {"sandbox": {"num_cpus": 0.5}},
        "sandbox": {"workers_per_actor": 1, "limits": {"time_s": 2, "program_time_s": 10}},
        "stages": {"boost": {"max_problems": 2, "max_concurrent_problems": 2,
                             "search": {"rollouts": 1, "width": 1, "n_sim": 1, "max_depth": 2}}},
    }


def check_boost(run_dir: Path, logs: str) -> None:
    boost = run_dir / "boost"
    traces = [json.loads(line) for f in sorted((boost / "traces").glob("*.jsonl")) for line in f.read_text().splitlines()]
    assert len(traces) == 2, f"expected 2 boost traces, found {len(traces)}"
    for r in traces:
        assert set(r["llm_generations"]) == {"tiny-a", "tiny-b"}, "both agents must have worked on every problem"
        assert r["hidden_status"] is not None
    sft = [json.loads(line) for line in (boost / "sft.jsonl").read_text().splitlines()]
    assert {row["problem_id"] for row in sft} == {r["problem_id"] for r in traces if r["hidden_passed_all"]}
    summary = json.loads((boost / "summary.json").read_text())
    assert summary["problems"] == 2 and summary["sft_rows"] == len(sft)
    # rich wraps long lines in the job's log: compare without whitespace
    assert f"artifacts:{boost}" in re.sub(r"\s+", "", logs), "the job's own output names its artifacts"


ARTIFACT_CHECKS: list[Callable[[Path, str], None]] = [check_boost]


def later_stages_config(tmp_path: Path, models: dict) -> dict:
    return {**job_config(tmp_path, models), "run_name": "pipeline", **LATER_STAGES}


def check_later_stages(run_dir: Path, logs: str) -> None:
    manifest = json.loads((run_dir / "disentangle" / "experts" / "manifest.json").read_text())
    assert len(manifest["experts"]) == 2 and manifest["all_data"] is not None
    for solver in ("base", "all_data", "hard_routing", "customized", "teacher-tiny-a", "teacher-tiny-b"):
        summary = json.loads((run_dir / "eval" / "heldout" / solver / "heldout" / "summary.json").read_text())
        assert summary["n_problems"] == 4 and "pass@1" in summary
    routed = [json.loads(line) for line in (run_dir / "eval" / "heldout" / "hard_routing" / "heldout" / "samples.jsonl").open()]
    assert {s["expert"] for s in routed} <= {e["name"] for e in manifest["experts"]}
    mixed = [json.loads(line) for line in (run_dir / "eval" / "heldout" / "customized" / "heldout" / "samples.jsonl").open()]
    assert all(abs(sum(s["shares"].values()) - 1) < 1e-4 for s in mixed)
    differences = json.loads((run_dir / "eval" / "heldout" / "differences.json").read_text())
    assert {d["difference"] for d in differences} >= {"all_data-base", "hard_routing-all_data", "customized-hard_routing"}
    assert (run_dir / "serve" / "serve_config.yaml").is_file()
    report = (run_dir / "report" / "report.md").read_text()
    for heading in ("## Held-out evaluation", "## Routing", "## Disentangle", "## Customize"):
        assert heading in report
    assert "teacher:tiny-a" in report and "95% interval" in report
    for png in ("clusters.png", "ablation_heldout.png", "routing_heatmap.png"):
        assert (run_dir / "report" / png).is_file(), png
    assert "Held-out synthetic problems" in logs and "customized" in logs, "the job prints the final table"


def job_status(head: LocalHead, submission_id: str) -> str:
    """The job's status as `ray job status` prints it (terminal states as sentences, others as a field)."""
    out = head.job("status", submission_id)
    text, job = out.stdout + out.stderr, re.escape(submission_id)
    sentences = {"SUCCEEDED": rf"Job '{job}' succeeded", "FAILED": rf"Job '{job}' failed", "STOPPED": rf"Job '{job}' was stopped"}
    for status, pattern in sentences.items():
        if re.search(pattern, text):
            return status
    match = re.search(rf"Status for job '{job}': (\w+)", text)
    assert match, f"`ray job status` said:\n{text}"
    return match.group(1)


def wait_for_job(head: LocalHead, submission_id: str) -> str:
    deadline = time.time() + JOB_TIMEOUT_S
    while time.time() < deadline:
        status = job_status(head, submission_id)
        if status in TERMINAL:
            return status
        time.sleep(5)
    head.job("stop", submission_id)
    raise AssertionError(f"job {submission_id} not finished after {JOB_TIMEOUT_S:.0f} s")


@pytest.fixture(scope="module")
def head():
    """One `ray start --head` for both jobs (a second head would cost its start-up again); stopped by its own pids."""
    with LocalHead(num_cpus=2) as started:
        yield started
    assert not started.own_processes(), "processes of the test's head outlived it"


@pytest.mark.timeout(JOB_TIMEOUT_S + 600)
def test_boost_job_via_ray_job_submit(head, tmp_path, tiny_agents):
    config_file = tmp_path / "job.yaml"
    config_file.write_text(yaml.safe_dump(job_config(tmp_path, tiny_agents), sort_keys=False))
    submission_id = f"bdc-test-{uuid.uuid4().hex[:8]}"
    submitted = head.job(
        "submit", "--submission-id", submission_id, "--no-wait",
        "--working-dir", str(ROOT), "--runtime-env-json", json.dumps({"excludes": UPLOAD_EXCLUDES}),
        "--", *ENTRYPOINT, "--config", str(config_file),
    )
    assert submitted.returncode == 0, f"ray job submit failed:\n{submitted.stdout}\n{submitted.stderr}"
    status = wait_for_job(head, submission_id)
    logs = head.job("logs", submission_id).stdout
    assert status == "SUCCEEDED", f"job ended {status}; its logs:\n{logs[-6000:]}"
    assert submission_id in head.job("list").stdout
    run_dir = tmp_path / "runs" / "submitted"
    for check in ARTIFACT_CHECKS:
        check(run_dir, logs)


def test_pipeline_job_via_ray_job_submit(head, tmp_path, tiny_agents, ray_local):
    """jobs/pipeline.py as users submit it, from disentangle on (Boost's own job is the test above);
    then `--only eval` on its run folder, here, resumes: nothing is generated again."""
    from rich.console import Console

    from bdc_ray.config import parse_config
    from bdc_ray.pipeline import run_pipeline

    cfg_dict = later_stages_config(tmp_path, tiny_agents)
    cfg = parse_config(cfg_dict, base=ROOT)
    seed_sft_rows(cfg)
    run_dir = Path(cfg.run_dir)
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(yaml.safe_dump(cfg_dict, sort_keys=False))
    submission_id = f"bdc-test-{uuid.uuid4().hex[:8]}"
    submitted = head.job(
        "submit", "--submission-id", submission_id, "--no-wait",
        "--working-dir", str(ROOT), "--runtime-env-json", json.dumps({"excludes": UPLOAD_EXCLUDES}),
        "--", "python", "jobs/pipeline.py", "--config", str(config_file), "--from", "disentangle",
    )
    assert submitted.returncode == 0, f"ray job submit failed:\n{submitted.stdout}\n{submitted.stderr}"
    status = wait_for_job(head, submission_id)
    logs = head.job("logs", submission_id).stdout
    assert status == "SUCCEEDED", f"job ended {status}; its logs:\n{logs[-6000:]}"
    check_later_stages(run_dir, logs)
    summaries = sorted((run_dir / "eval" / "heldout").rglob("summary.json"))
    before = {f: f.stat().st_mtime_ns for f in summaries}
    again = run_pipeline(cfg, Console(width=200), only=["eval"])["eval"]
    solvers = ("base", "all_data", "hard_routing", "customized", "teacher:tiny-a", "teacher:tiny-b")
    assert {(s["solver"], s["split"]) for s in again} == {(n, "heldout") for n in solvers}
    for s in again:
        folder = s["solver"].replace(":", "-")
        written = json.loads((run_dir / "eval" / "heldout" / folder / "heldout" / "summary.json").read_text())
        assert s["pass@1"] == written["pass@1"]
    assert {f: f.stat().st_mtime_ns for f in summaries} == before, "a resumed eval rewrote finished results"
