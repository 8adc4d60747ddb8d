"""Serve under bounded load on 127.0.0.1: serve.batch on vs off, streaming, then one replica killed mid-run.

Part 1 (batching), one replica: for 1, 8 and 32 concurrent clients, a fixed number of greedy
completion requests over different problems (so every batch mixes routing weights); throughput
and p50/p99 latency with serve.batch on and off (`serve.batching.enabled`), side by side.

Part 2 (streaming), one replica, batching on: the same requests with `stream: true`, for each
number of clients: time to the first token (the first chunk with text) and time to the whole
answer, and the same requests unstreamed right after, so the figures are side by side.

Part 3 (kill), two replicas, batching on: clients keep sending while one replica actor (found through
ray.util.state) is killed with ray.kill. Every request that failed is reported with its status
and whether it was in flight when the replica died; clients retry a failed request once, and
the final failures are reported separately. Target: no failure beyond the requests in flight.

    .venv/bin/python benchmarks/serve_load.py                      # the demo solver (built on first use)
    .venv/bin/python benchmarks/serve_load.py --parts streaming --clients 1,8
    .venv/bin/python benchmarks/serve_load.py --hypernet RUN/customize/hypernet --experts RUN/disentangle/experts
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field

from support import ROOT, free_port  # first: the repository on the path, offline settings

import httpx  # noqa: E402
import ray  # noqa: E402
from ray import serve  # noqa: E402
from rich.table import Table  # noqa: E402

from bdc_ray.console import wide_console  # noqa: E402
from bdc_ray.problems.synth import format_prompt  # noqa: E402
from bdc_ray.serve.app import REPLICA_HEADER, build_app  # noqa: E402
from bdc_ray.serve.deploy_config import AppArgs  # noqa: E402

APP = "bdc"
MODEL = "bdc-solver"


@dataclass
class Outcome:
    started: float
    ended: float
    status: int | str
    replica: str | None
    tokens: int = 0
    attempts: int = 1
    first_status: int | str | None = None
    first_token: float | None = None
    """When the first chunk with text arrived (streamed requests)."""


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def latencies(self) -> list[float]:
        return sorted(o.ended - o.started for o in self.outcomes if o.status == 200)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


async def _one(client: httpx.AsyncClient, url: str, body: dict, retries: int) -> Outcome:
    started = time.perf_counter()
    first: int | str | None = None
    for attempt in range(1, retries + 2):
        try:
            response = await client.post(url, json=body)
            status: int | str = response.status_code
            if status == 200:
                tokens = response.json()["usage"]["completion_tokens"]
                return Outcome(started, time.perf_counter(), 200, response.headers.get(REPLICA_HEADER), tokens,
                               attempt, first)
        except httpx.TransportError as err:
            status = type(err).__name__
        first = status if first is None else first
    return Outcome(started, time.perf_counter(), status, None, 0, retries + 1, first)


async def _one_streamed(client: httpx.AsyncClient, url: str, body: dict) -> Outcome:
    """One request with stream=true, read chunk by chunk as it arrives."""
    started = time.perf_counter()
    first_token, tokens = None, 0
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    async with client.stream("POST", url, json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if first_token is None and chunk["choices"] and chunk["choices"][0]["text"]:
                first_token = time.perf_counter()
        return Outcome(started, time.perf_counter(), response.status_code, response.headers.get(REPLICA_HEADER), tokens,
                       first_token=first_token)


async def load(url: str, prompts: list[str], requests: int, clients: int, max_tokens: int, retries: int = 0,
               on_progress=None, stream: bool = False) -> Run:
    """`clients` callers, each sending its next request when the last one returned, `requests` in all."""
    bodies = [{"model": MODEL, "prompt": prompts[i % len(prompts)], "max_tokens": max_tokens, "temperature": 0}
              for i in range(requests)]
    queue = list(reversed(bodies))
    run = Run()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        async def caller() -> None:
            while queue:
                body = queue.pop()
                if stream:
                    outcome = await _one_streamed(client, url + "/v1/completions", body)
                else:
                    outcome = await _one(client, url + "/v1/completions", body, retries)
                run.outcomes.append(outcome)
                if on_progress is not None:
                    await on_progress(len(run.outcomes))

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(clients)))
        run.seconds = time.perf_counter() - started
    return run


def deploy(args: AppArgs, url: str) -> None:
    serve.run(build_app(args), name=APP, route_prefix="/")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the application did not become healthy")


def settings(base: dict, **changes) -> dict:
    merged = {**base}
    for key, value in changes.items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    return merged


def part_batching(artifacts: dict, base: dict, url: str, prompts: list[str], cli) -> list[tuple]:
    rows = []
    for enabled in (True, False):
        app_args = AppArgs(**artifacts, settings=settings(base, batching={"enabled": enabled},
                                                          autoscaling={"min_replicas": 1, "max_replicas": 1}))
        deploy(app_args, url)
        asyncio.run(load(url, prompts, 8, 4, cli.max_tokens))  # warm-up: first forwards, lazy imports
        for clients in cli.clients:
            run = asyncio.run(load(url, prompts, cli.requests, clients, cli.max_tokens))
            ok = [o for o in run.outcomes if o.status == 200]
            lat = run.latencies()
            rows.append(("on" if enabled else "off", clients, len(ok), len(run.outcomes) - len(ok),
                         len(ok) / run.seconds, sum(o.tokens for o in ok) / run.seconds,
                         percentile(lat, 0.5), percentile(lat, 0.99)))
            print(f"batching {'on' if enabled else 'off'}, {clients} clients: {len(ok)} ok in {run.seconds:.1f} s",
                  flush=True)
    return rows


def part_streaming(artifacts: dict, base: dict, url: str, prompts: list[str], cli) -> list[tuple]:
    """Per number of clients: streamed first-token and whole-answer times, then the same requests unstreamed."""
    app_args = AppArgs(**artifacts, settings=settings(base, autoscaling={"min_replicas": 1, "max_replicas": 1}))
    deploy(app_args, url)
    asyncio.run(load(url, prompts, 8, 4, cli.max_tokens, stream=True))  # warm-up
    rows = []
    for clients in cli.clients:
        streamed = asyncio.run(load(url, prompts, cli.requests, clients, cli.max_tokens, stream=True))
        plain = asyncio.run(load(url, prompts, cli.requests, clients, cli.max_tokens))
        ok = [o for o in streamed.outcomes if o.status == 200 and o.first_token is not None]
        ttft = sorted(o.first_token - o.started for o in ok)
        whole = sorted(o.ended - o.started for o in ok)
        ratios = sorted((o.first_token - o.started) / (o.ended - o.started) for o in ok)
        rows.append((clients, len(ok), len(streamed.outcomes) - len(ok), percentile(ttft, 0.5), percentile(ttft, 0.99),
                     percentile(whole, 0.5), percentile(whole, 0.99), percentile(ratios, 0.5),
                     len(ok) / streamed.seconds, percentile(plain.latencies(), 0.5),
                     len(plain.latencies()) / plain.seconds))
        print(f"streaming, {clients} clients: {len(ok)} ok in {streamed.seconds:.1f} s", flush=True)
    return rows


def replica_actors() -> list:
    from ray.util.state import list_actors

    filters = [("class_name", "=", f"ServeReplica:{APP}:BDCSolver"), ("state", "=", "ALIVE")]
    return list_actors(address=ray.get_runtime_context().gcs_address, filters=filters)


def part_kill(artifacts: dict, base: dict, url: str, prompts: list[str], cli) -> dict:
    app_args = AppArgs(**artifacts, settings=settings(base, autoscaling={"min_replicas": 2, "max_replicas": 2}))
    deploy(app_args, url)
    deadline = time.monotonic() + 300
    while len(replica_actors()) < 2 and time.monotonic() < deadline:
        time.sleep(1)
    asyncio.run(load(url, prompts, 8, 4, cli.max_tokens))
    victims = replica_actors()
    killed: dict = {}

    async def kill_at_third(done: int) -> None:
        if not killed and done >= cli.kill_requests // 3:
            victim = victims[0]
            killed.update(time=time.perf_counter(), name=victim.name, pid=victim.pid)
            ray.kill(ray.get_actor(victim.name, namespace="serve"), no_restart=True)
            print(f"killed replica actor {victim.name} (pid {victim.pid}) after {done} requests", flush=True)

    run = asyncio.run(load(url, prompts, cli.kill_requests, cli.kill_clients, cli.max_tokens, retries=1,
                           on_progress=kill_at_third))
    t_kill = killed["time"]
    first_failed = [o for o in run.outcomes if o.attempts > 1 or o.status != 200]
    in_flight = [o for o in first_failed if o.started <= t_kill]
    all_in_flight = sum(o.started <= t_kill < o.ended for o in run.outcomes)
    after = [o for o in first_failed if o.started > t_kill]
    final = [o for o in run.outcomes if o.status != 200]
    by_replica: dict[str, int] = {}
    for o in run.outcomes:
        if o.replica:
            by_replica[o.replica] = by_replica.get(o.replica, 0) + 1
    return {
        "requests": len(run.outcomes), "clients": cli.kill_clients, "killed": killed["name"],
        "first_attempt_failures": len(first_failed),
        "first_attempt_statuses": sorted({str(o.first_status) for o in first_failed}),
        "in_flight_at_kill_all_replicas": all_in_flight, "failed_in_flight_at_kill": len(in_flight), "failed_started_after_kill": len(after),
        "final_failures_after_one_retry": len(final), "answered_by_replica": by_replica,
        "seconds": round(run.seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hypernet", help="Hypernetwork folder (default: the demo solver).")
    parser.add_argument("--experts", help="Experts folder with manifest.json.")
    parser.add_argument("--demo-dir", default=str(ROOT / "runs" / "models" / "serve-demo"),
                        help="Where the demo solver is built on first use.")
    parser.add_argument("--requests", type=int, default=64, help="Requests per (batching, clients) run.")
    parser.add_argument("--clients", default="1,8,32", help="Concurrent clients, comma-separated.")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--kill-requests", type=int, default=96, help="Requests of the replica-kill run.")
    parser.add_argument("--kill-clients", type=int, default=8)
    parser.add_argument("--parts", default="batching,streaming,kill",
                        help="Which parts to run, comma-separated: batching, streaming, kill.")
    cli = parser.parse_args()
    cli.clients = [int(c) for c in cli.clients.split(",")]
    parts = set(cli.parts.split(","))
    unknown = parts - {"batching", "streaming", "kill"}
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}")

    if cli.hypernet:
        from bdc_ray.problems.synth import SynthConfig, generate_suite

        artifacts = {"hypernet": cli.hypernet, "experts": cli.experts}
        suite = generate_suite(SynthConfig(seed=7, train_per_family=0, heldout_per_family=2, heldout_comp_per_family=0))
        prompts = [format_prompt(p) for p in suite.heldout]
    else:
        from bdc_ray.demo import build_demo

        demo = build_demo(cli.demo_dir)
        artifacts = {"hypernet": demo.hypernet, "experts": demo.experts}
        prompts = [format_prompt(p) for p in demo.problems]

    ray.init(address="local", num_cpus=2, include_dashboard=True, log_to_driver=False,
             runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    base = {"resources": {"num_cpus": 1}, "max_ongoing_requests": max(32, max(cli.clients)),
            "batching": {"max_batch_size": cli.max_batch_size, "batch_wait_timeout_s": 0.02},
            "limits": {"max_tokens": max(cli.max_tokens, 256)}}
    try:
        rows = part_batching(artifacts, base, url, prompts, cli) if "batching" in parts else []
        streaming = part_streaming(artifacts, base, url, prompts, cli) if "streaming" in parts else []
        killed = part_kill(artifacts, base, url, prompts, cli) if "kill" in parts else None
    finally:
        serve.shutdown()
        ray.shutdown()

    console = wide_console()
    if rows:
        table = Table(title=f"Serve load: {cli.requests} greedy completions per run, max_tokens {cli.max_tokens}, "
                            f"1 replica (1 CPU, 1 thread), max_batch_size {cli.max_batch_size}")
        for col in ("serve.batch", "clients", "ok", "failed", "req/s", "tokens/s", "p50 s", "p99 s", "vs off"):
            table.add_column(col, justify="right")
        off = {r[1]: r[4] for r in rows if r[0] == "off"}
        for mode, clients, ok, failed, rps, tps, p50, p99 in sorted(rows, key=lambda r: (r[1], r[0] == "off")):
            table.add_row(mode, str(clients), str(ok), str(failed), f"{rps:.2f}", f"{tps:.0f}", f"{p50:.2f}",
                          f"{p99:.2f}", f"{rps / off[clients]:.2f}x" if clients in off else "")
        console.print(table)
    if streaming:
        table = Table(title=f"Streaming: {cli.requests} greedy completions per run, max_tokens {cli.max_tokens}, "
                            f"1 replica, max_batch_size {cli.max_batch_size}; first token vs whole answer, then the "
                            "same requests unstreamed")
        for col in ("clients", "ok", "failed", "first token p50 / p99 s",
                    "whole answer p50 / p99 s", "first / whole (p50)", "streamed req/s", "unstreamed p50 s",
                    "unstreamed req/s"):
            table.add_column(col, justify="right")
        for clients, ok, failed, t50, t99, w50, w99, ratio, rps, plain50, plain_rps in streaming:
            table.add_row(str(clients), str(ok), str(failed), f"{t50:.3f} / {t99:.3f}",
                          f"{w50:.3f} / {w99:.3f}", f"{ratio:.2f}", f"{rps:.2f}", f"{plain50:.3f}", f"{plain_rps:.2f}")
        console.print(table)
    if killed is not None:
        console.print("Replica killed mid-run (2 replicas, batching on, each client retries a failure once):")
        console.print_json(data=killed)


if __name__ == "__main__":
    main()
