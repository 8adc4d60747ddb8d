"""cluster/aws.yaml's node types on one machine: Ray's local autoscaling cluster, started safely.

`ray.cluster_utils.AutoscalingCluster` (Ray's local autoscaling test cluster) is a `ray start
--head --autoscaling-config=FILE` whose FILE names the `fake_multinode` node provider: the
autoscaler (v1, Ray 2.60's default) runs in the head's monitor process and starts every worker
node it decides on as a real raylet on this machine, with the resources and labels of its node
type. Two things keep the class itself out of this repository's tests:

- it builds FILE from `fake_multi_node/example.yaml`, which the Ray 2.60 wheel does not ship
  (`AutoscalingCluster(...)` raises FileNotFoundError); `fake_multinode_config` writes the same
  keys (those of ray-project/ray's python/ray/autoscaler/_private/fake_multi_node/example.yaml)
  and places the node types the way `AutoscalingCluster._generate_config` does;
- its `start()` and `shutdown()` run `ray stop --force`, which kills every Ray process on the
  machine, other people's clusters included. `AutoscalingHead` is the repository's `LocalHead`
  (own temp dir, own ports, stopped by its own pids) with the autoscaling config and the
  environment `AutoscalingCluster.start` sets (RAY_FAKE_CLUSTER=1, AUTOSCALER_UPDATE_INTERVAL_S=1).

The node types are cluster/aws.yaml's, read from it and scaled down (`scaled_node_types`), so the
local run and the cloud file cannot drift apart.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.jobs.local_head import LocalHead

FAKE_HEAD_TYPE = "ray.head.default"
"""The head's node type name the fake provider gives the head (FAKE_HEAD_NODE_TYPE)."""

CPU_SCALE = 8
"""aws.yaml's CPU counts are divided by this: cpu 16 -> 2, gpu 8 -> 1 (at least 1 per worker)."""

LOCAL_MAX_WORKERS = {"cpu": 1, "gpu": 2}
"""At most this many nodes of a type on one 2-core machine (aws.yaml allows 16 and 8)."""

IDLE_TIMEOUT_MINUTES = 0.1
"""aws.yaml lets an idle node go after 10 minutes; here after 6 s, so scale-down shows in a test."""

OBJECT_STORE_BYTES = 200 * 1024**2
"""Each fake node would otherwise reserve 30% of the machine's memory for its object store."""


def scaled_node_types(aws: dict[str, Any]) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """(head resources, worker node types) of a cluster-launcher config, scaled to one machine.

    Every worker type keeps its GPUs, custom resources (cpu_node, gpu_node), labels and
    min_workers; its CPUs are divided by CPU_SCALE and its max_workers capped. The head keeps
    what it offers (aws.yaml: no CPU, no GPU: only drivers run there)."""
    head_name = aws["head_node_type"]
    types = aws["available_node_types"]
    head = {k: float(v) for k, v in types[head_name].get("resources", {}).items()}
    workers = {}
    for name, spec in types.items():
        if name == head_name:
            continue
        resources = {k: float(v) for k, v in spec["resources"].items()}
        if "CPU" in resources:
            resources["CPU"] = float(max(1, math.ceil(resources["CPU"] / CPU_SCALE)))
        workers[name] = {
            "resources": {**resources, "object_store_memory": OBJECT_STORE_BYTES},
            "labels": dict(spec.get("labels", {})),
            "node_config": {},
            "min_workers": int(spec.get("min_workers", 0)),
            "max_workers": min(int(spec.get("max_workers", 2)), LOCAL_MAX_WORKERS.get(name, 1)),
        }
    return head, workers


def fake_multinode_config(
    head_resources: dict[str, float], worker_node_types: dict[str, dict[str, Any]], gcs_address: str, **overrides: Any
) -> dict[str, Any]:
    """The autoscaling config AutoscalingCluster writes (its `_generate_config`, autoscaler v1),
    with the provider told where this head's GCS listens (the fake provider's default is port
    6379, which another cluster on the machine may hold)."""
    return {
        "cluster_name": "bdc-local-autoscaling",
        "max_workers": sum(t["max_workers"] for t in worker_node_types.values()),
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": gcs_address,
        },
        "available_node_types": {
            **worker_node_types,
            FAKE_HEAD_TYPE: {"resources": dict(head_resources), "node_config": {}, "max_workers": 0},
        },
        "head_node_type": FAKE_HEAD_TYPE,
        "auth": {},
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": IDLE_TIMEOUT_MINUTES,
        "docker": {},
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        **overrides,
    }


@dataclass
class AutoscalingHead(LocalHead):
    """A LocalHead whose monitor autoscales `worker_node_types` as local fake nodes."""

    head_resources: dict[str, float] = field(default_factory=dict)
    worker_node_types: dict[str, dict[str, Any]] = field(default_factory=dict)
    config_overrides: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_launcher_file(cls, path: Path, **kwargs: Any) -> AutoscalingHead:
        head, workers = scaled_node_types(yaml.safe_load(path.read_text()))
        return cls(num_cpus=int(head.get("CPU", 0)), head_resources=head, worker_node_types=workers, **kwargs)

    @property
    def autoscaling_config_file(self) -> Path:
        return Path(self.temp_dir) / "autoscaling.json"

    def command(self) -> list[str]:
        config = fake_multinode_config(self.head_resources, self.worker_node_types, self.gcs_address,
                                       **self.config_overrides)
        self.autoscaling_config_file.write_text(json.dumps(config, indent=1))
        return [
            *super().command(),
            f"--autoscaling-config={self.autoscaling_config_file}",
            f"--num-gpus={int(self.head_resources.get('GPU', 0))}",
            f"--object-store-memory={OBJECT_STORE_BYTES}",
        ]

    def env(self) -> dict[str, str]:
        return super().env() | {"RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1"}


def main() -> None:
    """`python -m tests.cluster.autoscaling`: the cluster of the test, by hand, until Ctrl-C."""
    import signal
    import sys
    import time

    from tests.conftest import ROOT

    with AutoscalingHead.from_launcher_file(ROOT / "cluster" / "aws.yaml") as head:
        print(
            f"Ray's local autoscaling cluster with cluster/aws.yaml's node types, scaled down: {head.worker_node_types}\n"
            f"dashboard and job API: {head.dashboard_url}   GCS: {head.gcs_address}   logs: {head.temp_dir}/session_latest/logs\n"
            f"in another shell, from {ROOT}:\n"
            f"  export RAY_AUTH_MODE=disabled\n"
            f"  ray job submit --address {head.dashboard_url} --runtime-env-json '{{\"working_dir\": \"local://{ROOT}\"}}' \\\n"
            f"      -- python jobs/pipeline.py --config cluster/ray_config.yaml --override cluster/local_override.yaml\n"
            f"  ray status --address {head.gcs_address}; ray list nodes --address {head.gcs_address} --detail\n"
            "Ctrl-C stops this cluster (its own processes only).",
            flush=True,
        )
        for stop in (signal.SIGINT, signal.SIGTERM):  # also when started in the background (SIGINT ignored)
            signal.signal(stop, signal.default_int_handler)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    sys.exit(0)


if __name__ == "__main__":
    main()
