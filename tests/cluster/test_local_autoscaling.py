"""cluster/ray_config.yaml end to end on one machine: Ray's local autoscaling cluster with
cluster/aws.yaml's node types scaled down (tests/cluster/autoscaling.py), the pipeline merged
with cluster/local_override.yaml and submitted with `ray job submit`.

The fast tests check the override: every request of every stage lands on the same node type of
the scaled-down cluster as cluster/ray_config.yaml's does on aws.yaml. The slow test runs the
pipeline and reads back from Ray's State API which node type each actor (agents, sandboxes, Ray
Train workers, Tune trials) and task (held-out generation, tiny builds) ran on, which node types
the autoscaler started, and that it let every worker node go once the job was done.

The State API is read with the `ray list` CLI in a child process: a `ray.init` here would be a
second Ray session in the test process (tests/conftest.py, `ray_local`).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from bdc_ray.config import load_config
from bdc_ray.heldout.solvers import generate_timed
from bdc_ray.plan import launcher_node_types
from tests.cluster.autoscaling import LOCAL_MAX_WORKERS, AutoscalingHead, scaled_node_types
from tests.cluster.conftest import CLUSTER, placements, stage_requests
from tests.conftest import ROOT, _tiny_recipe
from tests.jobs.local_head import RAY
from tests.jobs.test_job_submit import wait_for_job

OVERRIDE = CLUSTER / "local_override.yaml"
AWS = CLUSTER / "aws.yaml"
SCALE_DOWN_TIMEOUT_S = 120.0


def local_config(*extra: Path):
    return load_config(CLUSTER / "ray_config.yaml", override_files=[OVERRIDE, *extra])


def local_node_types():
    """The scaled-down node types as NodeTypes (head included), read the way `bdc plan` reads aws.yaml."""
    head, workers = scaled_node_types(yaml.safe_load(AWS.read_text()))
    resources = {name: {k: v for k, v in t["resources"].items() if k != "object_store_memory"} for name, t in workers.items()}
    return launcher_node_types({
        "head_node_type": "head",
        "available_node_types": {"head": {"resources": head},
                                 **{n: {**t, "resources": resources[n]} for n, t in workers.items()}},
    })


def test_scaled_node_types_are_aws_yamls():
    aws = yaml.safe_load(AWS.read_text())
    head, workers = scaled_node_types(aws)
    assert head == {"CPU": 0, "GPU": 0} and set(workers) == {"cpu", "gpu"}
    for name, t in workers.items():
        original = aws["available_node_types"][name]
        assert t["labels"] == original["labels"] and t["min_workers"] == original["min_workers"] == 0
        assert 0 < t["max_workers"] == min(original["max_workers"], LOCAL_MAX_WORKERS[name])
        assert t["resources"].get("GPU", 0) == original["resources"].get("GPU", 0)
        custom = {k: v for k, v in t["resources"].items() if k not in ("CPU", "GPU", "object_store_memory")}
        assert custom == {k: v for k, v in original["resources"].items() if k not in ("CPU", "GPU")}
        assert 1 <= t["resources"]["CPU"] < original["resources"]["CPU"]


def test_the_override_keeps_every_stage_on_its_node_type(cluster_config):
    """What each stage asks for, resolved by the stages' own functions, fits the same node types
    of the local cluster as the unmodified config does of aws.yaml (and fits at all)."""
    local = local_config()
    cloud = placements(launcher_node_types(yaml.safe_load(AWS.read_text())), cluster_config)
    here = placements(local_node_types(), local)
    agents = {f"agent {a.name}" for a in cluster_config.models.agents}
    assert {k: v for k, v in cloud.items() if k not in agents} == {k: v for k, v in here.items() if not k.startswith("agent ")}
    assert {tuple(v) for k, v in cloud.items() if k in agents} == {tuple(v) for k, v in here.items() if k.startswith("agent ")} == {("gpu",)}
    assert all(here.values()), here
    requests = stage_requests(local)
    assert all(r.num_gpus == 1 for k, r in requests.items() if k != "sandbox"), "every GPU stage still asks for its GPU"
    assert local.stages.disentangle.experts.scaling.use_gpu and local.stages.disentangle.experts.scaling.torch_backend == "gloo"


def test_the_override_agents_are_the_test_suites_tiny_recipes():
    """So a test session's tiny builds (tests/conftest.py, `tiny_agents`) are reused by recipe."""
    recipes = [a.tiny.model_dump(exclude_unset=True) for a in local_config().models.agents]
    assert recipes == [_tiny_recipe(0), _tiny_recipe(1, ["arith", "string", "list"])]


# --- the run ------------------------------------------------------------------------------

JOB_TIMEOUT_S = 1200.0

OURS = {"LLMActor": "gpu", "SandboxActor": "cpu", "RayTrainWorker": "gpu", "ImplicitFunc": "gpu"}
"""The stages' actors and the node type each is pinned to: agents (Boost), sandboxes (data, Boost,
eval), Ray Train workers (Disentangle's expert runs), Tune trials (Customize's function trainable)."""

OUR_TASKS = {generate_timed.__name__: "gpu"}
"""The held-out generation tasks (eval), named from the function the stage submits so a rename
cannot leave the check behind; the tiny builds are pinned to no node type (any CPU)."""

STAGE_END = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ INFO bdc_ray\.pipeline: stage (\w+) finished in (\d+) s$", re.M)
"""The pipeline's own log line at the end of every stage (bdc_ray/pipeline.py)."""


def ray_list(head: AutoscalingHead, kind: str, *filters: str) -> list[dict]:
    """`ray list <kind> --detail` against the test's cluster, as JSON (a child process)."""
    argv = [RAY, "list", kind, "--address", head.gcs_address, "--detail", "--format", "json", "--limit", "10000"]
    for f in filters:
        argv += ["--filter", f]
    out = subprocess.run(argv, env=head.env(), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{' '.join(argv)}:\n{out.stdout}\n{out.stderr}"
    if out.stdout.strip() == "No resource in the cluster":  # what `ray list` prints for an empty list
        return []
    return json.loads(out.stdout)


def wait_for_nodes(head: AutoscalingHead, timeout_s: float = 60) -> list[dict]:
    """The node list once the head is in it (the State API can answer before it is)."""
    deadline = time.time() + timeout_s
    while not (nodes := ray_list(head, "nodes")) and time.time() < deadline:
        time.sleep(1)
    return nodes


def node_type(node: dict) -> str:
    """head / cpu / gpu from what a node offers, checked against the label aws.yaml gives it."""
    if node["is_head_node"]:
        return "head"
    resources = node["resources_total"]
    kind = "gpu" if resources.get("gpu_node") else "cpu" if resources.get("cpu_node") else "?"
    assert node["labels"].get("bdc-node-type") == kind, node
    return kind


def requested(required: dict[str, float]) -> set[str]:
    """The resources a request names, placement-group bundles (`GPU_group_0_<pg id>`) unwrapped."""
    names = {PG_RESOURCE.sub(r"\1", name) for name, amount in required.items() if amount > 0}
    return names - {"bundle"}


PG_RESOURCE = re.compile(r"^(.+?)_group_(?:\d+_)?[0-9a-f]{16,}$")


def allowed_types(required: dict[str, float]) -> set[str]:
    """The node types a request may land on, from what it asks for (what the test checks against
    where it did land): a node-type resource or a GPU pins it, a CPU keeps it off the head."""
    names = requested(required)
    if "gpu_node" in names or "GPU" in names:
        return {"gpu"}
    if "cpu_node" in names:
        return {"cpu"}
    if "node:__internal_head__" in names:
        return {"head"}
    if "CPU" in names:
        return {"cpu", "gpu"}
    return {"head", "cpu", "gpu"}  # Ray's own bookkeeping actors (controllers, supervisors) ask for nothing


def stage_windows(logs: str) -> dict[str, tuple[float, float]]:
    """stage -> [start, end) in epoch seconds: each stage from the previous one's "stage X finished"
    line to its own (the first from its own duration back), so every moment has one stage."""
    windows, previous = {}, None
    for stamp, stage, seconds in STAGE_END.findall(logs):
        end = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + 1  # the line's second, rounded up
        windows[stage] = (previous if previous is not None else end - int(seconds) - 1, end)
        previous = end
    return windows


def epoch_s(stamp: str) -> float:
    """A State API time ('2026-12-07 06:18:32.953000', local time) in epoch seconds."""
    return time.mktime(time.strptime(stamp.split(".")[0], "%Y-%m-%d %H:%M:%S"))


def placement_report(nodes: list[dict], actors: list[dict], tasks: list[dict], logs: str) -> dict:
    kinds = {n["node_id"]: node_type(n) for n in nodes}
    where: dict[str, set[str]] = defaultdict(set)
    misplaced = []
    for item, name in [*((a, a["class_name"]) for a in actors), *((t, f"task {t['func_or_class_name']}") for t in tasks)]:
        landed = kinds[item["node_id"]]
        where[name].add(landed)
        if landed not in allowed_types(item["required_resources"]):
            misplaced.append(f"{name} {item['required_resources']} on {landed}")
    started: dict[str, dict[str, int]] = {}
    for stage, (start, end) in stage_windows(logs).items():
        counts: dict[str, int] = defaultdict(int)
        for n in nodes:
            if not n["is_head_node"] and start <= epoch_s(n["start_time_ms"]) < end:
                counts[kinds[n["node_id"]]] += 1
        started[stage] = dict(counts)
    totals: dict[str, int] = defaultdict(int)
    for n in nodes:
        totals[kinds[n["node_id"]]] += 1
    return {
        "nodes_started": dict(totals),
        "started_during_stage": started,
        "stage_seconds": {stage: int(seconds) for _, stage, seconds in STAGE_END.findall(logs)},
        "ran_on": {name: sorted(types) for name, types in sorted(where.items())},
        "misplaced": misplaced,
    }


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(JOB_TIMEOUT_S + 600)
def test_the_pipeline_on_the_local_autoscaling_cluster(tmp_path, tiny_agents):
    paths = tmp_path / "paths.yaml"
    paths.write_text(yaml.safe_dump({"storage_path": str(tmp_path / "runs"),
                                     "models": {"build_root": tiny_agents["build_root"]}}))
    cfg = local_config(paths)
    started = time.time()
    with AutoscalingHead.from_launcher_file(AWS) as head:
        up = time.time()
        assert [node_type(n) for n in wait_for_nodes(head)] == ["head"], "min_workers 0: only the head at start"
        submission_id = f"bdc-autoscale-{uuid.uuid4().hex[:8]}"
        submitted = head.job(
            "submit", "--submission-id", submission_id, "--no-wait",
            # The repository is on every fake node (they are all this machine): used in place, never
            # uploaded and unpacked into the session folder the nodes share (cluster/README.md).
            "--runtime-env-json", json.dumps({"working_dir": f"local://{ROOT}"}),
            "--", "python", "jobs/pipeline.py", "--config", "cluster/ray_config.yaml",
            "--override", "cluster/local_override.yaml", "--override", str(paths),
        )
        assert submitted.returncode == 0, f"ray job submit failed:\n{submitted.stdout}\n{submitted.stderr}"
        status = wait_for_job(head, submission_id)
        finished = time.time()
        logs = head.job("logs", submission_id).stdout
        assert status == "SUCCEEDED", f"job ended {status}; its logs:\n{logs[-8000:]}"

        # Scale-down: every worker node is let go once idle (aws.yaml's 10 minutes, 6 s here).
        while True:
            nodes = ray_list(head, "nodes")
            alive = [n for n in nodes if n["state"] == "ALIVE" and not n["is_head_node"]]
            if not alive or time.time() - finished > SCALE_DOWN_TIMEOUT_S:
                break
            time.sleep(2)
        released = time.time()
        assert not alive, f"worker nodes still up {SCALE_DOWN_TIMEOUT_S:.0f} s after the job: {alive}"
        actors = ray_list(head, "actors")
        tasks = ray_list(head, "tasks", "type=NORMAL_TASK")
    for name, value in {"nodes": nodes, "actors": actors, "tasks": tasks}.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(value, indent=1))
    (tmp_path / "job.log").write_text(logs)

    report = placement_report(nodes, actors, tasks, logs)
    report["wall_s"] = {"head_up": round(up - started), "job": round(finished - up), "scale_down": round(released - finished)}
    print(json.dumps(report, indent=1))
    (tmp_path / "placement.json").write_text(json.dumps(report, indent=1))

    # Every actor and task ran where its request pins it, and every stage's own actors ran.
    assert not report["misplaced"], report
    for name, kind in {**OURS, **{f"task {t}": k for t, k in OUR_TASKS.items()}}.items():
        assert report["ran_on"].get(name) == [kind], f"{name} should have run on {kind} nodes only: {report}"
    # The autoscaler started the node types the stages asked for, and no type for a stage that
    # does not ask for it: the data stage runs sandboxes only, Customize Tune trials only.
    started_types = report["nodes_started"]
    assert started_types["head"] == 1 and started_types.get("cpu", 0) >= 1 and started_types.get("gpu", 0) >= 1, report
    assert set(started_types) == {"head", "cpu", "gpu"}, report
    stages = report["started_during_stage"]
    assert set(stages) == {"data", "boost", "disentangle", "customize", "eval", "serve", "report"}, report
    assert set(stages["data"]) == {"cpu"}, report
    assert set(stages["customize"]) <= {"gpu"}, report
    # ... never more of a type at once than aws.yaml's (scaled) max_workers allows
    for kind, most in peak_alive(nodes).items():
        assert most <= LOCAL_MAX_WORKERS[kind], f"{most} {kind} nodes at once: {report}"
    # ... and what the stages wrote is there.
    run = Path(cfg.run_dir)
    assert json.loads((run / "boost" / "summary.json").read_text())["problems"] == 2
    assert len(json.loads((run / "disentangle" / "experts" / "manifest.json").read_text())["experts"]) == 2
    assert (run / "customize" / "hypernet").is_dir() and (run / "report" / "report.md").is_file()


def peak_alive(nodes: list[dict]) -> dict[str, int]:
    """The most worker nodes of each type that were up at the same time."""
    events = []
    for n in nodes:
        if n["is_head_node"]:
            continue
        events += [(epoch_s(n["start_time_ms"]), 1, node_type(n)), (epoch_s(n["end_time_ms"]), -1, node_type(n))]
    peak: dict[str, int] = defaultdict(int)
    now: dict[str, int] = defaultdict(int)
    for _, step, kind in sorted(events, key=lambda e: (e[0], e[1])):
        now[kind] += step
        peak[kind] = max(peak[kind], now[kind])
    return dict(peak)
