"""What a user deploys, built here: base model + experts manifest + hypernetwork folder (bdc_ray.demo),
and the Serve application started from it on the session's local Ray cluster, over real HTTP.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import socket
from collections.abc import Iterator
from contextlib import contextmanager
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

    from bdc_ray.demo import build_demo

    torch.set_num_threads(1)
    return build_demo(models_root / "serve-demo")


@pytest.fixture(scope="session")
def engine(demo):
    """The demo solver loaded in this process, behind the serving engine (no Ray)."""
    from bdc_ray.customize.solver import load_customized
    from bdc_ray.serve.engine import Engine

    return Engine(load_customized(demo.hypernet, threads=1))


def run_jobs(engine, jobs) -> list:
    """Every job's samples through the engine's asynchronous face, as the app reads them."""
    import asyncio

    async def collect():
        done = [{} for _ in jobs]
        async for item in engine.astream(jobs):
            for j, events in enumerate(item):
                for event in [] if events is StopIteration else events:
                    if event.done is not None:
                        done[j][event.sample] = event.done
        return [engine.output(job, done[j]) for j, job in enumerate(jobs)]

    return asyncio.run(collect())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Served:
    url: str
    key: str
    settings: dict[str, Any]
    runs: str  # the storage_path whose runs' report files it serves

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def start_app(demo, key_file: str, settings: dict[str, Any], port: int, runs: str | None = None) -> None:
    """serve.start + serve.run from the arguments the generated Serve config YAML carries."""
    from ray import serve

    from bdc_ray.serve.app import build_app
    from bdc_ray.serve.deploy_config import AppArgs, serve_deploy_config

    args = AppArgs(hypernet=demo.hypernet, experts=demo.experts, runs=runs,
                   settings={**settings, "port": port, "auth": {"api_key_file": key_file}})
    app_config = serve_deploy_config(args)["applications"][0]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(app_config["args"]), name=app_config["name"], route_prefix=app_config["route_prefix"])


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> str:
    """A storage_path with one reported run (`explored`: Boost traces, report.md, the explorer) and
    one run folder without a report (`unreported`)."""
    from bdc_ray.artifacts.layout import RunLayout
    from bdc_ray.report import build_report
    from tests.report.explorer_runs import fake_records, write_traces

    root = tmp_path_factory.mktemp("runs")
    write_traces(str(root / "explored"), fake_records())
    build_report(RunLayout(str(root / "explored")))
    (root / "unreported" / "boost").mkdir(parents=True)
    return str(root)


@contextmanager
def serving(demo, tmp_path_factory, settings: dict[str, Any], runs: str | None = None) -> Iterator[Served]:
    """One replica (so /healthz reports the replica that served everything), auth on, on the session's cluster."""
    from ray import serve

    key_file = tmp_path_factory.mktemp("serve-key") / "key"
    key_file.write_text(API_KEY + "\n")
    port = free_port()
    start_app(demo, str(key_file), settings, port, runs)
    try:
        yield Served(url=f"http://127.0.0.1:{port}", key=API_KEY, settings=settings, runs=runs or "")
    finally:
        serve.shutdown()


@pytest.fixture(scope="module")
def served(ray_local, demo, runs_root, tmp_path_factory) -> Iterator[Served]:
    """Batching on (a long wait, so concurrent requests share a batch), limits small enough to test."""
    settings = {
        "autoscaling": {"min_replicas": 1, "max_replicas": 1},
        "resources": {"num_cpus": 0.5},
        "batching": {"max_batch_size": 8, "batch_wait_timeout_s": 0.25},
        "limits": {"max_body_bytes": 20_000, "max_prompt_chars": 2_000, "max_tokens": 200, "max_n": 6,
                   "max_tests": 5, "max_test_chars": 500},
        "solve": {"max_tokens": 200, "sandbox_workers": 1, "sandbox_limits": {"time_s": 2.0, "program_time_s": 8.0}},
    }
    with serving(demo, tmp_path_factory, settings, runs_root) as app:
        yield app
