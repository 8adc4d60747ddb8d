"""What the benchmarks share: the repository on the path, offline settings, a free port, a local
multi-node Ray cluster, the tiny base model of a config, a timed sandbox executor for Boost, and an
OpenAI-compatible endpoint with a fixed added latency (a child process serving a local tiny model).

A benchmark imports it first (`import support`, benchmarks/ is on sys.path when it runs as a
script), before anything from bdc_ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Before torch loads: nothing from a hub, and idle OpenMP workers sleep instead of spinning on shared cores.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SMALL_NODE = {"object_store_memory": 150 * 1024**2, "memory": 2 * 1024**3, "include_dashboard": False}
"""A local node's share of this machine: small enough that several fit in 24 GiB."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_cluster(nodes: int, cpus_per_node: int, resources_per_node: dict[str, float]) -> Iterator[Any]:
    """A `ray.cluster_utils.Cluster` of `nodes` nodes on this machine, joined by this driver; all
    shut down afterwards (only this cluster: nothing else on the machine is touched)."""
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    node = {"num_cpus": cpus_per_node, "resources": dict(resources_per_node), **SMALL_NODE}
    cluster = Cluster(initialize_head=True, head_node_args=node)
    try:
        for _ in range(nodes - 1):
            cluster.add_node(**node)
        ray.init(address=cluster.address, namespace="bdc-bench", log_to_driver=False)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def first_tiny_base(cfg) -> str:
    """The folder of the config's first agent, a tiny model built (or reused) under its build root."""
    from bdc_ray.tiny import build_tiny

    agent = cfg.models.agents[0]
    if agent.tiny is None:
        raise SystemExit(f"the first agent ({agent.name}) is not a tiny model: this benchmark trains on a tiny base")
    return str(build_tiny(agent.tiny, cfg.models.build_root))


class TimedExecutor:
    """The sandbox pool as Boost's executor (`BoostRunner(executor=...)`), timing the wall during
    which at least one program runs (one event loop: no locking needed)."""

    def __init__(self, pool) -> None:
        self.pool, self.active, self.calls, self.busy_s, self._since = pool, 0, 0, 0.0, 0.0

    async def arun(self, program, tests):
        if self.active == 0:
            self._since = time.perf_counter()
        self.active, self.calls = self.active + 1, self.calls + 1
        try:
            return await self.pool.arun(program, tests)
        finally:
            self.active -= 1
            if self.active == 0:
                self.busy_s += time.perf_counter() - self._since


# --- an OpenAI-compatible endpoint with a fixed latency ------------------------------------------


def serve_with_latency(model_path: str, model_name: str, latency_s: float, window_ms: float) -> None:
    """The project's `create_app` over a local model whose concurrent requests share forward batches
    (as a vLLM server's do), plus a fixed sleep before every /v1 request and /bench routes that set
    the latency and report requests in flight. Runs in its own process (`LatencyServer`), so the
    model's Python-heavy generate loop does not share a GIL with the benchmark's driver."""
    import uvicorn
    from fastapi import Request

    from bdc_ray.llm.base import BaseLLM
    from bdc_ray.llm.batcher import Batcher
    from bdc_ray.llm.hf_backend import TransformersLLM
    from bdc_ray.llm.openai_server import create_app

    class BatchedLLM(BaseLLM):
        def __init__(self, llm: TransformersLLM) -> None:
            self.llm, self.name = llm, llm.name
            self.batcher = Batcher(llm, window_s=window_ms / 1000, max_prompts=64)

        def generate_with_stats(self, prompts, sampling, adapter=None):
            return self.llm.generate_with_stats(prompts, sampling, adapter)

        async def agenerate_with_stats(self, prompts, sampling, adapter=None):
            return await self.batcher.generate(prompts, sampling, adapter)

    llm = BatchedLLM(TransformersLLM(model_path, device="cpu", threads=1, max_batch_size=16))
    app = create_app(llm, model_name)
    state = {"latency_s": latency_s, "requests": 0, "in_flight": 0, "peak": 0, "area": 0.0, "last": time.perf_counter()}

    def account(delta: int) -> None:
        now = time.perf_counter()
        state["area"] += state["in_flight"] * (now - state["last"])  # time-weighted requests in flight
        state["last"], state["in_flight"] = now, state["in_flight"] + delta
        state["peak"] = max(state["peak"], state["in_flight"])

    @app.middleware("http")
    async def fixed_latency(request: Request, call_next):
        if not request.url.path.startswith("/v1/"):
            return await call_next(request)
        state["requests"] += 1
        account(+1)
        try:
            await asyncio.sleep(state["latency_s"])
            return await call_next(request)
        finally:
            account(-1)

    @app.post("/bench/latency")
    async def set_latency(seconds: float) -> dict[str, float]:
        state["latency_s"] = max(0.0, seconds)
        return {"latency_s": state["latency_s"]}

    @app.get("/bench/stats")
    async def bench_stats() -> dict[str, Any]:
        account(0)
        s = llm.batcher.stats
        out = {k: state[k] for k in ("latency_s", "requests", "in_flight", "peak", "area")}
        return {**out, "compute_busy_s": s.busy_s, "backend_calls": s.backend_calls, "prompts": s.prompts}

    @app.post("/bench/reset_peak")
    async def reset_peak() -> dict[str, int]:
        state["peak"] = state["in_flight"]
        return {"peak": state["peak"]}

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])


class LatencyServer:
    """`serve_with_latency` in a child process: started, waited for, and stopped by its own pid."""

    def __init__(self, model_path: str, model_name: str, latency_s: float, window_ms: float, log_file: Path) -> None:
        code = (f"import support; support.serve_with_latency({model_path!r}, {model_name!r}, {latency_s!r}, "
                f"{window_ms!r})")
        self.cmd = [sys.executable, "-c", code]
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _call(self, method: str, route: str, **params) -> Any:
        import httpx

        response = httpx.request(method, f"http://127.0.0.1:{self.port}{route}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def set_latency(self, seconds: float) -> None:
        self._call("POST", "/bench/latency", seconds=seconds)

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/bench/stats")

    def reset_peak(self) -> None:
        self._call("POST", "/bench/reset_peak")

    def __enter__(self) -> LatencyServer:
        import httpx

        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_file.open("w")
        self.proc = subprocess.Popen(self.cmd, cwd=Path(__file__).parent, stdout=subprocess.PIPE, stderr=self._log,
                                     text=True, start_new_session=True)
        try:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            if not line.startswith("PORT "):
                raise RuntimeError(f"latency server did not start (see {self.log_file})")
            self.port = int(line.split()[1])
            deadline = time.monotonic() + 180
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                        return self
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"latency server is not answering (see {self.log_file})")
                time.sleep(0.2)
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if getattr(self, "_log", None) is not None:
            self._log.close()
