"""What a user deploys, built here: base model + experts manifest + hypernetwork folder (bdc_ray.serve.demo),
and the Serve application started from it on the session's local Ray cluster, over real HTTP.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

API_KEY = "test-key-" + "0123456789abcdef"


@pytest.fixture(scope="session")
def models_root(tmp_path_factory):
    """A `models.build_root`: `bdc serve ... --demo` finds the demo built under it by `demo`."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def demo(models_root):
    import torch

    from bdc_ray.serve.demo import build_demo

    torch.set_num_threads(1)
    return build_demo(models_root / "serve-demo")


@pytest.fixture(scope="session")
def engine(demo):
    """The demo solver loaded in this process, behind the serving engine (no Ray)."""
    from bdc_ray.customize.solver import load_customized
    from bdc_ray.serve.engine import Engine

    return Engine(load_customized(demo.hypernet, threads=1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Served:
    url: str
    key: str
    settings: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def start_app(demo, key_file: str, settings: dict[str, Any], port: int) -> None:
    """serve.start + serve.run from the arguments the generated Serve config YAML carries."""
    from ray import serve

    from bdc_ray.serve.app import build_app
    from bdc_ray.serve.deploy_config import AppArgs, serve_deploy_config

    args = AppArgs(hypernet=demo.hypernet, experts=demo.experts,
                   settings={**settings, "port": port, "auth": {"api_key_file": key_file}})
    app_config = serve_deploy_config(args)["applications"][0]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(app_config["args"]), name=app_config["name"], route_prefix=app_config["route_prefix"])


@pytest.fixture(scope="module")
def served(ray_local, demo, tmp_path_factory) -> Iterator[Served]:
    """One replica (so /healthz reports the replica that served everything), batching on, auth on."""
    from ray import serve

    key_file = tmp_path_factory.mktemp("serve-key") / "key"
    key_file.write_text(API_KEY + "\n")
    port = free_port()
    settings = {
        "autoscaling": {"min_replicas": 1, "max_replicas": 1},
        "resources": {"num_cpus": 0.5},
        "batching": {"max_batch_size": 8, "batch_wait_timeout_s": 0.25},
        "limits": {"max_body_bytes": 20_000, "max_prompt_chars": 2_000, "max_tokens": 200, "max_n": 6,
                   "max_tests": 5, "max_test_chars": 500},
        "solve": {"max_tokens": 200, "sandbox_workers": 1, "sandbox_limits": {"time_s": 2.0, "program_time_s": 8.0}},
    }
    start_app(demo, str(key_file), settings, port)
    try:
        yield Served(url=f"http://127.0.0.1:{port}", key=API_KEY, settings=settings)
    finally:
        serve.shutdown()
