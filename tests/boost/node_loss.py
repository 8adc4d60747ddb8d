"""The node-loss run of tests/boost/test_runner.py, in a process of its own.

It needs a multi-node cluster (ray.cluster_utils.Cluster) and a driver connected to it; in the
test process that would be a second Ray session, whose start leaves the first session's metric
reader thread running to crash the interpreter at exit (tests/conftest.py, `ray_local`). Here
it is the only session of its process.

    python -m tests.boost.node_loss <config.yaml> <result.json>

Agents are pinned to node A (resource `agent_slot`); A is killed once the first problem has
finished, after node B (with the same resource) joined. The result file holds the Boost
summary and whether the run was still going when A was removed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from bdc_ray.artifacts.traces import finished_ids
from bdc_ray.config import load_config
from tests.boost.support import boost

SMALL_NODE = {"object_store_memory": 150 * 1024**2, "memory": 2 * 1024**3}
"""Each node of a one-machine cluster would otherwise count all of the machine's memory."""


def run(config_file: str) -> dict:
    cfg = load_config(config_file)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, **SMALL_NODE})
    try:
        node_a = cluster.add_node(num_cpus=2, resources={"agent_slot": 2}, **SMALL_NODE)
        ray.init(address=cluster.address, log_to_driver=False)
        result: dict = {}
        worker = threading.Thread(target=lambda: result.update(summary=boost(cfg)), daemon=True)
        worker.start()
        traces = cfg.layout.traces_dir
        deadline = time.time() + 300
        while time.time() < deadline and not finished_ids(traces) and worker.is_alive():
            time.sleep(0.5)
        result["removed_while_running"] = worker.is_alive()
        cluster.add_node(num_cpus=2, resources={"agent_slot": 2}, **SMALL_NODE)
        cluster.remove_node(node_a, allow_graceful=False)  # declared dead after ~15 s of missed heartbeats
        worker.join(timeout=900)
        result["finished"] = not worker.is_alive()
        return result
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(run(sys.argv[1])))
