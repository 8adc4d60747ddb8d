"""cluster/kuberay/: the manifests parse and carry what the ray.io/v1 CRDs and KubeRay need.

No Kubernetes API server is reachable here, so `manifest_problems` checks the fields the CRDs
require (and the ones KubeRay reads to start Ray), and every check is shown to reject a broken
copy. The Ray resources each group offers are derived the way KubeRay derives them (container
limits for CPU and GPU, rayStartParams for custom resources) and matched against the stages of
cluster/ray_config.yaml.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import tomllib

import pytest
import ray
import yaml

from bdc_ray.plan import kuberay_cluster_spec as cluster_spec
from bdc_ray.plan import kuberay_custom_resources as custom_resources
from bdc_ray.plan import kuberay_node_types as node_types
from tests.cluster.conftest import CLUSTER, assert_stages_pinned
from tests.conftest import ROOT

KUBERAY = CLUSTER / "kuberay"
SERVE_IMPORT_PATH = "bdc_ray.serve.app:build_app"


def manifests() -> dict[str, dict]:
    docs = {}
    for path in sorted(KUBERAY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    return docs


def _pod_problems(where: str, template: dict) -> list[str]:
    problems = []
    containers = (template or {}).get("spec", {}).get("containers") or []
    if not containers:
        return [f"{where}.template.spec.containers: missing"]
    for i, c in enumerate(containers):
        for key in ("name", "image", "resources"):
            if not c.get(key):
                problems.append(f"{where}.template.spec.containers[{i}].{key}: missing")
        if c.get("resources") and not c["resources"].get("limits"):
            problems.append(f"{where}.template.spec.containers[{i}].resources.limits: missing")
    return problems


def cluster_spec_problems(where: str, spec: dict) -> list[str]:
    problems = []
    if spec.get("rayVersion") != ray.__version__:
        problems.append(f"{where}.rayVersion: {spec.get('rayVersion')!r} is not the installed ray {ray.__version__}")
    if spec.get("enableInTreeAutoscaling") is not True:
        problems.append(f"{where}.enableInTreeAutoscaling: must be true")
    head = spec.get("headGroupSpec")
    if not isinstance(head, dict):
        return problems + [f"{where}.headGroupSpec: missing"]
    if not isinstance(head.get("rayStartParams", {}), dict):
        problems.append(f"{where}.headGroupSpec.rayStartParams: must be a mapping")
    problems += _pod_problems(f"{where}.headGroupSpec", head.get("template"))
    groups = spec.get("workerGroupSpecs") or []
    if not groups:
        problems.append(f"{where}.workerGroupSpecs: missing")
    names = [g.get("groupName") for g in groups]
    for i, g in enumerate(groups):
        at = f"{where}.workerGroupSpecs[{i}]"
        if not g.get("groupName"):
            problems.append(f"{at}.groupName: missing")
        counts = [g.get(k) for k in ("minReplicas", "replicas", "maxReplicas")]
        if not all(isinstance(n, int) for n in counts):
            problems.append(f"{at}: minReplicas, replicas and maxReplicas must all be integers, got {counts}")
        elif not counts[0] <= counts[1] <= counts[2] or counts[2] < 1:
            problems.append(f"{at}: need minReplicas <= replicas <= maxReplicas, maxReplicas >= 1, got {counts}")
        if not isinstance(g.get("rayStartParams", {}), dict):
            problems.append(f"{at}.rayStartParams: must be a mapping")
        else:
            try:
                custom_resources(g.get("rayStartParams", {}))
            except (TypeError, json.JSONDecodeError) as err:
                problems.append(f"{at}.rayStartParams.resources: not KubeRay's quoted JSON ({err})")
        problems += _pod_problems(at, g.get("template"))
    if len(set(names)) != len(names):
        problems.append(f"{where}.workerGroupSpecs: groupName values repeat: {names}")
    return problems


def manifest_problems(doc: dict) -> list[str]:
    """Everything wrong with one RayCluster / RayJob / RayService manifest ([] if nothing)."""
    kind = doc.get("kind")
    problems = []
    if doc.get("apiVersion") != "ray.io/v1":
        problems.append(f"{kind}.apiVersion: {doc.get('apiVersion')!r}, expected 'ray.io/v1'")
    if not doc.get("metadata", {}).get("name"):
        problems.append(f"{kind}.metadata.name: missing")
    spec = doc.get("spec") or {}
    nested = {"RayCluster": None, "RayJob": "rayClusterSpec", "RayService": "rayClusterConfig"}
    if kind not in nested:
        return problems + [f"kind: {kind!r} is not a KubeRay kind"]
    cluster = spec if nested[kind] is None else spec.get(nested[kind])
    if not isinstance(cluster, dict):
        return problems + [f"{kind}.spec.{nested[kind]}: missing"]
    problems += cluster_spec_problems(f"{kind}.spec" + (f".{nested[kind]}" if nested[kind] else ""), cluster)
    if kind == "RayJob":
        if not spec.get("entrypoint"):
            problems.append("RayJob.spec.entrypoint: missing")
        try:
            runtime_env = yaml.safe_load(spec.get("runtimeEnvYAML") or "{}")
            if not isinstance(runtime_env, dict):
                problems.append("RayJob.spec.runtimeEnvYAML: not a mapping")
        except yaml.YAMLError as err:
            problems.append(f"RayJob.spec.runtimeEnvYAML: not YAML ({err})")
    if kind == "RayService":
        try:
            serve = yaml.safe_load(spec.get("serveConfigV2") or "")
        except yaml.YAMLError as err:
            return problems + [f"RayService.spec.serveConfigV2: not YAML ({err})"]
        apps = (serve or {}).get("applications") if isinstance(serve, dict) else None
        if not apps:
            problems.append("RayService.spec.serveConfigV2.applications: missing")
        for i, app in enumerate(apps or []):
            if not re.fullmatch(r"[\w.]+:[\w.]+", str(app.get("import_path", ""))):
                problems.append(f"RayService.spec.serveConfigV2.applications[{i}].import_path: not 'module:attribute'")
            if not app.get("name"):
                problems.append(f"RayService.spec.serveConfigV2.applications[{i}].name: missing")
    return problems


KINDS = ["RayCluster", "RayJob", "RayService"]


@pytest.mark.parametrize("kind", KINDS)
def test_manifest_is_complete(kind):
    docs = manifests()
    assert kind in docs, f"no {kind} in {KUBERAY}"
    assert manifest_problems(docs[kind]) == []


def _break(doc: dict, path: str, value=None, delete: bool = False) -> dict:
    broken = copy.deepcopy(doc)
    *parents, last = path.split("/")
    node = broken
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if delete:
        del node[int(last) if isinstance(node, list) else last]
    else:
        node[int(last) if isinstance(node, list) else last] = value
    return broken


BREAKAGES = {
    "RayCluster": [
        ("apiVersion", "ray.io/v1alpha1", False),
        ("spec/rayVersion", "2.9.0", False),
        ("spec/enableInTreeAutoscaling", None, True),
        ("spec/headGroupSpec", None, True),
        ("spec/headGroupSpec/template/spec/containers/0/image", None, True),
        ("spec/workerGroupSpecs/0/groupName", None, True),
        ("spec/workerGroupSpecs/1/groupName", "cpu", False),
        ("spec/workerGroupSpecs/0/maxReplicas", None, True),
        ("spec/workerGroupSpecs/0/minReplicas", 99, False),
        ("spec/workerGroupSpecs/1/template/spec/containers/0/resources", None, True),
        ("spec/workerGroupSpecs/0/rayStartParams/resources", "{cpu_node: 1", False),
    ],
    "RayJob": [
        ("spec/entrypoint", None, True),
        ("spec/runtimeEnvYAML", "working_dir: [unclosed", False),
        ("spec/rayClusterSpec", None, True),
        ("spec/rayClusterSpec/rayVersion", "2.46.0", False),
    ],
    "RayService": [
        ("spec/serveConfigV2", "applications: []\n", False),
        ("spec/serveConfigV2", "applications:\n  - name: x\n    import_path: bdc_ray.serve.app\n", False),
        ("spec/rayClusterConfig/workerGroupSpecs", [], False),
        ("spec/serveConfigV2", "applications: [unclosed\n", False),
    ],
}


@pytest.mark.parametrize(
    "kind,path,value,delete", [(k, *b) for k, items in BREAKAGES.items() for b in items],
    ids=lambda v: str(v)[:40] if isinstance(v, str) else None,
)
def test_broken_copy_is_rejected(kind, path, value, delete):
    broken = _break(manifests()[kind], path, value, delete)
    assert manifest_problems(broken), f"{kind} with {path} broken was accepted"


API_KEY_ENV = "BDC_SERVE_API_KEY"


def _without_api_key(spec: dict) -> dict:
    spec = copy.deepcopy(spec)
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        for c in group["template"]["spec"]["containers"]:
            c["env"] = [e for e in c.get("env", []) if e["name"] != API_KEY_ENV]
    return spec


def test_job_and_service_run_on_the_same_cluster_spec():
    docs = manifests()
    base = docs["RayCluster"]["spec"]
    assert cluster_spec(docs["RayJob"]) == base
    service = cluster_spec(docs["RayService"])
    assert _without_api_key(service) == base, "the RayService's cluster differs by more than the Serve API key"
    for group in [service["headGroupSpec"], *service["workerGroupSpecs"]]:
        env = {e["name"]: e for e in group["template"]["spec"]["containers"][0]["env"]}
        assert "secretKeyRef" in env[API_KEY_ENV]["valueFrom"], "the Serve API key must come from a Secret"


def test_groups_autoscale_and_pin_stages(cluster_config):
    spec = manifests()["RayCluster"]["spec"]
    types = {n.name: n for n in node_types(spec)}
    assert types["head"].cpus == 0 and types["head"].gpus == 0 and not types["head"].custom
    assert types["cpu"].custom == {"cpu_node": 1} and types["cpu"].gpus == 0
    assert types["gpu"].custom == {"gpu_node": 1} and types["gpu"].gpus >= 1
    assert_stages_pinned(list(types.values()), cluster_config)
    for g in spec["workerGroupSpecs"]:
        assert g["minReplicas"] == 0 < g["maxReplicas"], f"group {g['groupName']} must scale from zero"


def test_job_runs_the_pipeline_from_the_image():
    spec = manifests()["RayJob"]["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["python", "jobs/pipeline.py"] and (ROOT / argv[1]).is_file()
    config = argv[argv.index("--config") + 1]
    assert (ROOT / config).is_file(), f"the entrypoint's --config {config} is not in the repository"
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert runtime_env["working_dir"] == "/home/ray/bdc-ray"
    assert "WORKDIR /home/ray/bdc-ray" in (CLUSTER / "Dockerfile").read_text()
    assert {".git", ".venv", "runs"} <= set(runtime_env["excludes"])


def test_service_runs_what_bdc_serve_config_writes(cluster_config):
    """serveConfigV2 is accepted by Ray Serve's schema and is what deploy_config.py generates for its args."""
    from ray.serve.schema import ServeDeploySchema

    from bdc_ray.serve.deploy_config import IMPORT_PATH, AppArgs, serve_deploy_config

    serve = yaml.safe_load(manifests()["RayService"]["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(serve)
    (app,) = serve["applications"]
    args = AppArgs.model_validate(app["args"])
    generated = serve_deploy_config(args)
    (generated_app,) = generated["applications"]
    assert app["import_path"] == IMPORT_PATH == SERVE_IMPORT_PATH
    assert {k: v for k, v in app.items() if k != "args"} == {k: v for k, v in generated_app.items() if k != "args"}
    assert serve["http_options"] == generated["http_options"]
    assert AppArgs.model_validate(generated_app["args"]) == args
    assert SERVE_IMPORT_PATH in (CLUSTER / "README.md").read_text()

    run = cluster_config.run_dir
    assert (args.experts, args.hypernet) == (f"{run}/disentangle/experts", f"{run}/customize/hypernet")
    assert args.settings.host == "0.0.0.0" and args.settings.auth.api_key_env == API_KEY_ENV
    assert args.settings.solve.sandbox_limits.isolation == "required"
    assert (args.settings.engine, args.settings.vllm.dtype) == ("vllm", "bfloat16"), "vLLM on the GPU pods' vllm extra"
    types = node_types(manifests()["RayService"]["spec"]["rayClusterConfig"])
    assert [n.name for n in types if n.fits(args.settings.resources)] == ["gpu"], "solver replicas belong on GPU pods"


def test_images_are_built_from_the_installed_ray():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    assert f"ARG BASE_IMAGE=rayproject/ray:{ray.__version__}-py311-cpu" in dockerfile
    assert f"rayproject/ray:{ray.__version__}-py311-gpu" in dockerfile  # the documented GPU build
    spec = manifests()["RayCluster"]["spec"]
    images = {g["groupName"]: g["template"]["spec"]["containers"][0]["image"] for g in spec["workerGroupSpecs"]}
    images["head"] = spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
    assert images == {"head": f"bdc-ray:{version}-cpu", "cpu": f"bdc-ray:{version}-cpu", "gpu": f"bdc-ray:{version}-gpu"}


def test_token_auth_is_on_and_storage_is_shared(cluster_config):
    docs = manifests()
    assert docs["RayCluster"]["spec"]["authOptions"] == {"mode": "token"}
    claim = docs["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    spec = docs["RayCluster"]["spec"]
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        pod = group["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["bdc-shared"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["bdc-shared"] == "/mnt/bdc"
    assert cluster_config.storage_path.startswith("/mnt/bdc/"), "runs must land on the shared volume"
