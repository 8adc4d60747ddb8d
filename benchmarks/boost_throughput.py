"""Boost throughput: rollouts/s and agent busy fraction on 1 vs 2 local nodes, and behind a slow endpoint.

Three scenarios, run one after the other in ONE invocation (compare the ratios, not the absolute
numbers: the machine is shared), each on its own fresh `ray.cluster_utils.Cluster` on 127.0.0.1
and each with a fresh run name (nothing is resumed):

  A  one local node (head, 2 CPUs): two tiny agents (1 CPU each, built from `tiny:` recipes into
     runs/benchmarks/models and reused) and the sandbox pool (one actor per node).
  B  two local nodes (head + one added node, 2 CPUs each, small object store): the same workload;
     every node offers one agent slot, so each agent lands on its own node, and the pool has one
     sandbox actor per node. Both "nodes" are processes on the SAME 2 physical cores, so B cannot
     be faster in raw compute here: the point is that the run spreads over nodes and stays correct.
     A and B take turns (--repeats rounds) so that load from other processes hits both alike.
  C  OpenAI-compatible agents: the project's `create_app` over a local TransformersLLM of tiny
     agent A (requests with the same sampling batched by the project's Batcher, as a vLLM server
     would), in a uvicorn server on a free 127.0.0.1 port in its own process, with a middleware
     that sleeps a fixed latency before every /v1 request. Both agents (`backend: openai`,
     `style: completion`) talk to it. Runs: many problems in flight with the latency, one problem
     in flight with the latency, many in flight without it (what the latency costs).

Busy fraction of an agent = the actor's `stats()['busy_s']` (time inside backend calls) / wall
time of the Boost run; rollouts/s = the sum of `rollouts` over the trace records / wall. The
driver also times its sandbox calls (wall time with at least one program running).

    .venv/bin/python benchmarks/boost_throughput.py            # ~8 min on 2 quiet cores (+1 min to build the models once)
    .venv/bin/python benchmarks/boost_throughput.py --quick    # fewer problems, one round: ~3 min
    .venv/bin/python benchmarks/boost_throughput.py --scenarios C --latency 1.0
"""

from __future__ import annotations

import os

# Before torch loads (server process): idle OpenMP workers sleep instead of spinning on shared cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Iterator  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUSY_TARGET = 0.90
SMALL_NODE = {"object_store_memory": 150 * 1024**2, "memory": 2 * 1024**3, "include_dashboard": False}
AGENT_SLOT = "bench_agent_slot"  # custom resource: how many agents a node may host
SANDBOX_SLOT = "bench_sandbox_slot"  # custom resource: one sandbox actor per node (see base_overrides)


# --------------------------------------------------------------------------------------------
# The latency server (runs in its own process: `--serve`), so its model's Python-heavy generate
# loop does not share a GIL with the driver's event loop.
# --------------------------------------------------------------------------------------------


def serve(model_path: str, model_name: str, latency_s: float, window_ms: float) -> None:
    """create_app over a TransformersLLM, plus a fixed-latency middleware and a /bench control route."""
    import uvicorn
    from fastapi import Request

    from bdc_ray.llm.base import BaseLLM, GenerationStats, SamplingParams, Texts
    from bdc_ray.llm.batcher import Batcher
    from bdc_ray.llm.hf_backend import TransformersLLM
    from bdc_ray.llm.openai_server import create_app

    class BatchedLLM(BaseLLM):
        """Concurrent HTTP requests with the same sampling share one forward batch (as vLLM's server would)."""

        def __init__(self, llm: TransformersLLM, window_s: float) -> None:
            self.llm = llm
            self.name = llm.name
            self.batcher = Batcher(llm, window_s=window_s, max_prompts=64)

        def generate_with_stats(self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None) -> tuple[Texts, GenerationStats]:
            return self.llm.generate_with_stats(prompts, sampling, adapter)

        async def agenerate_with_stats(self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None) -> tuple[Texts, GenerationStats]:
            return await self.batcher.generate(prompts, sampling, adapter)

    llm = BatchedLLM(TransformersLLM(model_path, device="cpu", threads=1, max_batch_size=16), window_ms / 1000)
    app = create_app(llm, model_name)
    state = {"latency_s": latency_s, "requests": 0, "in_flight": 0, "peak": 0, "area": 0.0, "last": time.perf_counter()}

    def account(delta: int) -> None:
        now = time.perf_counter()
        state["area"] += state["in_flight"] * (now - state["last"])  # time-weighted requests in flight
        state["last"] = now
        state["in_flight"] += delta
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
    """The `--serve` child process: started, waited for, and stopped by its own pid."""

    def __init__(self, model_path: str, model_name: str, latency_s: float, window_ms: float, log_file: Path) -> None:
        self.cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", model_path, "--serve-name", model_name,
                    "--latency", str(latency_s), "--server-window-ms", str(window_ms)]
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LatencyServer":
        import httpx

        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_file.open("w")
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log, text=True, start_new_session=True)
        try:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            if not line.startswith("PORT "):
                raise RuntimeError(f"latency server did not start (see {self.log_file})")
            self.port = int(line.split()[1])
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(f"{self.root_url}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"latency server is not answering (see {self.log_file})")
                time.sleep(0.2)
        except BaseException:
            self.__exit__()
            raise
        return self

    def set_latency(self, seconds: float) -> None:
        import httpx

        httpx.post(f"{self.root_url}/bench/latency", params={"seconds": seconds}, timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        import httpx

        return httpx.get(f"{self.root_url}/bench/stats", timeout=10).json()

    def reset_peak(self) -> None:
        import httpx

        httpx.post(f"{self.root_url}/bench/reset_peak", timeout=10).raise_for_status()

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


# --------------------------------------------------------------------------------------------
# Clusters, configs and one measured Boost run
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def local_cluster(nodes: int, cpus_per_node: int, agent_slots_per_node: int) -> Iterator[Any]:
    """A `ray.cluster_utils.Cluster` of `nodes` nodes on this machine; the driver joins it; all shut down after."""
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": cpus_per_node, "resources": {AGENT_SLOT: agent_slots_per_node, SANDBOX_SLOT: 1},
                        **SMALL_NODE},
    )
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=cpus_per_node, resources={AGENT_SLOT: agent_slots_per_node, SANDBOX_SLOT: 1}, **SMALL_NODE)
        ray.init(address=cluster.address, namespace="bdc-bench", log_to_driver=False)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def tiny_recipes(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Two small, different tiny agents (cached under models.build_root between runs)."""
    synth = {"train_per_family": 200, "heldout_per_family": 0, "heldout_comp_per_family": 0}
    common = {"heads": 4, "vocab_size": 512, "context": 256, "steps": args.steps, "synth": synth}
    return {
        "tiny-a": {"name": "bench-a", "seed": 0, "layers": 2, "hidden": 96, **common},
        "tiny-b": {"name": "bench-b", "seed": 1, "layers": 2, "hidden": 64, "families": ["arith", "string", "list", "count"], **common},
    }


def base_overrides(args: argparse.Namespace, run_name: str, problems: int, concurrency: int, agents: list[dict[str, Any]],
                   sandbox_workers: int | None = None) -> dict[str, Any]:
    return {
        "run_name": run_name,
        "storage_path": str(Path(args.storage).resolve()),
        "data": {"synthetic": {"seed": args.seed, "train_per_family": math.ceil(problems / 6),
                               "heldout_per_family": 0, "heldout_comp_per_family": 0}},
        "models": {"build_root": str(Path(args.build_root).resolve()), "agents": agents},
        # Agents hold 1 CPU each and a node has 2: the sandbox actor asks for no logical CPU so that
        # the one-node case can be scheduled at all (its programs still run on the same cores). It
        # asks for a one-per-node custom slot instead: SandboxPool spreads its actors with SOFT node
        # affinity, which Ray does not honour for actors that request no resources at all (all
        # landed on one node in a probe), so without the slot B would not spread its sandbox.
        "resources": {"sandbox": {"num_cpus": 0, "resources": {SANDBOX_SLOT: 1}}},
        "sandbox": {"actors": None, "workers_per_actor": sandbox_workers or args.sandbox_workers, "limits": {"time_s": 2, "program_time_s": 10}},
        "stages": {"boost": {
            "problems": "synthetic:train", "max_problems": problems, "max_concurrent_problems": concurrency,
            "search": {"rollouts": args.rollouts, "width": args.width, "n_sim": args.n_sim, "max_depth": args.max_depth},
        }},
    }


def prompts_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"max_thought_tokens": args.max_thought_tokens, "max_code_tokens": args.max_code_tokens}


def tiny_agents(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [
        {"name": name, "tiny": recipe, "resources": {"num_cpus": 1, "resources": {AGENT_SLOT: 1}}, "prompts": prompts_settings(args)}
        for name, recipe in tiny_recipes(args).items()
    ]


def openai_agents(args: argparse.Namespace, base_url: str, model_name: str) -> list[dict[str, Any]]:
    model = {"backend": "openai", "path": model_name, "base_url": base_url, "max_concurrency": args.openai_max_concurrency,
             "timeout_s": 300.0, "max_retries": 2}
    return [
        {"name": name, "model": model, "style": "completion", "resources": {"num_cpus": 1, "resources": {AGENT_SLOT: 1}},
         "prompts": prompts_settings(args)}
        for name in tiny_recipes(args)
    ]


class InFlight:
    """Wall time during which at least one call was in flight (one event loop: no locking needed)."""

    def __init__(self) -> None:
        self.active = 0
        self.calls = 0
        self.busy_s = 0.0
        self._since = 0.0

    def enter(self) -> None:
        if self.active == 0:
            self._since = time.perf_counter()
        self.active += 1
        self.calls += 1

    def exit(self) -> None:
        self.active -= 1
        if self.active == 0:
            self.busy_s += time.perf_counter() - self._since


class TimedExecutor:
    """The sandbox pool as Boost's executor, timing the wall time during which a program runs."""

    def __init__(self, pool, tracker: InFlight) -> None:
        self.pool = pool
        self.tracker = tracker

    async def arun(self, program, tests):
        self.tracker.enter()
        try:
            return await self.pool.arun(program, tests)
        finally:
            self.tracker.exit()


def measured_boost(cfg, label: str, server: LatencyServer | None = None) -> dict[str, Any]:
    """Start agents and pool, run Boost on the stage's problems, read agent stats before killing them."""
    import ray

    from bdc_ray.boost.runner import BoostRunner, read_traces
    from bdc_ray.boost.stage import boost_dir, load_stage_problems, start_agents
    from bdc_ray.sandbox.ray_pool import make_pool

    stage = cfg.stages.boost
    problems = load_stage_problems(cfg, stage.problems, stage.format)[: stage.max_problems]
    setup = time.perf_counter()
    agents = start_agents(cfg)  # builds (or reuses) the tiny models, then waits for every actor
    pool = make_pool(cfg.sandbox, cfg.resources.sandbox.ray_options())
    try:
        sandbox_nodes = ray.get([a.node_id.remote() for a in pool.actors])  # the sandbox actors are up
        setup_s = time.perf_counter() - setup
        sandbox = InFlight()
        runner = BoostRunner(agents=agents, executor=TimedExecutor(pool, sandbox), search=stage.search,
                             out_dir=boost_dir(cfg), max_concurrent_problems=stage.max_concurrent_problems,
                             max_attempts=stage.max_attempts)
        actors = {h.name: h.actors[0] for h in agents}
        before = {n: ray.get(a.stats.remote()) for n, a in actors.items()}
        server_before = server.stats() if server else None
        if server:
            server.reset_peak()
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        summary = runner.run(problems)
        wall = time.perf_counter() - started
        after = {n: ray.get(a.stats.remote()) for n, a in actors.items()}
        server_after = server.stats() if server else None
        records = read_traces(runner.traces_dir)
    finally:
        pool.shutdown()
        for h in agents:
            for a in h.actors:
                ray.kill(a)
    alive = [n for n in ray.nodes() if n.get("Alive")]
    node_ids = [n["NodeID"] for n in alive]
    heads = [n["NodeID"] for n in alive if "node:__internal_head__" in n.get("Resources", {})]
    others = [nid for nid in node_ids if nid not in heads]
    short = {**{nid: "head" for nid in heads}, **{nid: f"node{i + 1}" for i, nid in enumerate(others)}}
    agent_rows = {}
    for name in actors:
        d = {k: after[name][k] - before[name][k] for k in ("requests", "backend_calls", "prompts", "busy_s", "completion_tokens")}
        d["busy_fraction"] = d["busy_s"] / wall
        d["mean_call_s"] = d["busy_s"] / d["backend_calls"] if d["backend_calls"] else 0.0
        d["requests_per_call"] = d["requests"] / d["backend_calls"] if d["backend_calls"] else 0.0
        d["node"] = short.get(after[name]["node_id"], after[name]["node_id"][:8])
        agent_rows[name] = d
    rollouts = sum(r["rollouts"] for r in records)
    result = {
        "label": label,
        "run_dir": cfg.run_dir,
        "problems": len(records),
        "problems_asked": len(problems),
        "errors": summary.get("errors", 0),
        "max_concurrent_problems": stage.max_concurrent_problems,
        "wall_s": wall,
        "loadavg_1m": [load_before, os.getloadavg()[0]],  # the machine's load around the run (noise from others)
        "setup_s": setup_s,
        "rollouts": rollouts,
        "rollouts_per_s": rollouts / wall,
        "problems_per_s": len(records) / wall,
        "solved_hidden": sum(bool(r["hidden_passed_all"]) for r in records),
        "llm_generations": sum(sum(r["llm_generations"].values()) for r in records),
        "sandbox_runs": sum(sum(r["sandbox_runs"].values()) for r in records),
        "sandbox_calls": sandbox.calls,
        "sandbox_busy_fraction": sandbox.busy_s / wall,  # wall time with >= 1 program running, as the driver sees it
        "completion_tokens": sum(d["completion_tokens"] for d in agent_rows.values()),
        "tokens_per_s": sum(d["completion_tokens"] for d in agent_rows.values()) / wall,
        "nodes": len(node_ids),
        "sandbox_nodes": sorted(short.get(n, n[:8]) for n in sandbox_nodes),
        "agents": agent_rows,
    }
    if server_before and server_after:
        requests = server_after["requests"] - server_before["requests"]
        result["server"] = {
            "latency_s": server_after["latency_s"],
            "requests": requests,
            "mean_in_flight": (server_after["area"] - server_before["area"]) / wall,
            "peak_in_flight": server_after["peak"],
            "compute_busy_fraction": (server_after["compute_busy_s"] - server_before["compute_busy_s"]) / wall,
            "compute_calls": server_after["backend_calls"] - server_before["backend_calls"],
            "latency_share_of_agent_busy": _latency_share(agent_rows, server_after["latency_s"]),
            # An agent's calls run one at a time, so calls x latency is wall time it spent in the server's sleep.
            "agent_wall_in_latency": {n: d["backend_calls"] * server_after["latency_s"] / wall for n, d in agent_rows.items()},
        }
    result["complete"] = result["problems"] == len(problems) and result["errors"] == 0
    result["spread_ok"] = len({d["node"] for d in agent_rows.values()}) == min(len(agent_rows), len(node_ids)) and len(
        set(result["sandbox_nodes"])) == min(len(pool.actors), len(node_ids))
    print(f"[{label}] {result['problems']}/{len(problems)} problems, {rollouts} rollouts in {wall:.1f} s "
          f"({result['rollouts_per_s']:.2f} rollouts/s), busy "
          + ", ".join(f"{n} {d['busy_fraction']:.0%} on {d['node']}" for n, d in agent_rows.items()), flush=True)
    return result


def _latency_share(agent_rows: dict[str, dict[str, Any]], latency_s: float) -> float:
    """Share of the agents' busy time that is the server's fixed sleep (>= one latency per backend call)."""
    busy = sum(d["busy_s"] for d in agent_rows.values())
    calls = sum(d["backend_calls"] for d in agent_rows.values())
    return min(1.0, calls * latency_s / busy) if busy else 0.0


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


def scenario_nodes(args: argparse.Namespace, stamp: str, nodes: int, repeat: int = 0) -> dict[str, Any]:
    from bdc_ray.config import load_config

    suffix = f" #{repeat + 1}" if args.repeats > 1 else ""
    label = f"{'A' if nodes == 1 else 'B'}: {nodes} node{'s' if nodes > 1 else ''}{suffix}"
    # One node: both agent slots on the head. Two nodes: one slot each, so the agents spread.
    with local_cluster(nodes, cpus_per_node=2, agent_slots_per_node=2 if nodes == 1 else 1):
        run_name = f"bt-{stamp}-{'A' if nodes == 1 else 'B'}-{nodes}node-{repeat}"
        # One sandbox actor per node: B has twice A's sandbox workers unless --match-sandbox gives A as many.
        workers = args.sandbox_workers * (2 if nodes == 1 and args.match_sandbox else 1)
        cfg = load_config(overrides=base_overrides(args, run_name, args.problems, args.concurrency, tiny_agents(args), workers))
        result = measured_boost(cfg, label)
        result["sandbox_workers"] = workers * nodes
        return result


def tiny_model_path(args: argparse.Namespace) -> str:
    """The folder of tiny agent A (built now if scenarios A/B did not already build it)."""
    from bdc_ray.llm.tiny import TinyModelConfig, build_tiny

    recipe = TinyModelConfig.model_validate(tiny_recipes(args)["tiny-a"])
    return str(build_tiny(recipe, Path(args.build_root).resolve(), progress=False))  # one torch thread (the default)


def scenario_openai(args: argparse.Namespace, stamp: str, out_dir: Path) -> list[dict[str, Any]]:
    from bdc_ray.config import load_config

    path = tiny_model_path(args)
    # (label, latency, problems in flight, problems, tag): the latency and no-latency runs take turns.
    runs = []
    for k in range(args.openai_rounds):
        suffix = f" #{k + 1}" if args.openai_rounds > 1 else ""
        runs.append((f"C: +{args.latency:g} s{suffix}", args.latency, args.openai_concurrency, args.openai_problems, f"hi{k}"))
        if not args.skip_zero_latency:
            runs.append((f"C: +0 s{suffix}", 0.0, args.openai_concurrency, args.openai_problems, f"zero{k}"))
    runs.append((f"C: +{args.latency:g} s", args.latency, 1, args.one_problems, "one"))
    results = []
    with LatencyServer(path, "tiny-a", args.latency, args.server_window_ms, out_dir / "boost_throughput_server.log") as server:
        with local_cluster(1, cpus_per_node=2, agent_slots_per_node=2):
            for label, latency, concurrency, problems, tag in runs:
                server.set_latency(latency)
                run_name = f"bt-{stamp}-C-{tag}"
                agents = openai_agents(args, server.base_url, "tiny-a")
                cfg = load_config(overrides=base_overrides(args, run_name, problems, concurrency, agents))
                result = measured_boost(cfg, label, server)
                result["kind"] = tag.rstrip("0123456789")
                results.append(result)
    return results


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    from rich.table import Table

    from bdc_ray.console import wide_console

    console = wide_console()
    names = list(dict.fromkeys(n for r in results for n in r["agents"]))
    table = Table(title="Boost throughput, one run side by side (ratio: rollouts/s vs the first row of its group)")
    diag = Table(title="Where the time went (agent calls are the Batcher's backend calls; sandbox: wall with a program running)")
    for col in ("scenario", "in flight", "problems", "rollouts", "wall s", "rollouts/s", "ratio", "problems/s",
                *(f"{n} busy (node)" for n in names)):
        table.add_column(col, justify="left" if col == "scenario" else "right", no_wrap=True)
    for col in ("scenario", "in flight", "tokens/s", "sandbox busy", "agent calls", "requests/call", "s/call", "LLM gens",
                "sandbox runs", "solved", "load 1m"):
        diag.add_column(col, justify="left" if col == "scenario" else "right", no_wrap=True)
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault("C" if r["label"].startswith("C") else "AB", []).append(r)
    for group in groups.values():
        ref = group[0]["rollouts_per_s"]
        for r in group:
            in_flight = str(min(r["max_concurrent_problems"], r["problems_asked"]))
            busy = [f"{r['agents'][n]['busy_fraction']:.0%} ({r['agents'][n]['node']})" if n in r["agents"] else "-" for n in names]
            table.add_row(
                r["label"], in_flight, f"{r['problems']}/{r['problems_asked']}" + ("" if r["complete"] else " !"),
                str(r["rollouts"]), f"{r['wall_s']:.1f}", f"{r['rollouts_per_s']:.2f}",
                f"{r['rollouts_per_s'] / ref:.2f}x" if ref else "-", f"{r['problems_per_s']:.3f}", *busy,
            )
            calls = sum(d["backend_calls"] for d in r["agents"].values())
            reqs = sum(d["requests"] for d in r["agents"].values())
            busy_s = sum(d["busy_s"] for d in r["agents"].values())
            diag.add_row(
                r["label"], in_flight, f"{r['tokens_per_s']:.0f}", f"{r['sandbox_busy_fraction']:.0%}", str(calls),
                f"{reqs / calls:.1f}" if calls else "-", f"{busy_s / calls:.2f}" if calls else "-",
                str(r["llm_generations"]), str(r["sandbox_runs"]), str(r["solved_hidden"]),
                "{:.1f} -> {:.1f}".format(*r["loadavg_1m"]),
            )
    console.print(table)
    console.print(diag)

    server_runs = [r for r in results if "server" in r]
    if server_runs:
        st = Table(title="Scenario C: the latency server's view")
        for col in ("scenario", "in flight", "latency s", "HTTP requests", "mean HTTP in flight", "peak", "server compute busy",
                    "agent busy in sleep", "agent wall in sleep", f"agent busy >= {BUSY_TARGET:.0%}"):
            st.add_column(col, justify="left" if col == "scenario" else "right")
        for r in server_runs:
            s = r["server"]
            meets = all(d["busy_fraction"] >= BUSY_TARGET for d in r["agents"].values())
            in_sleep = ", ".join(f"{v:.0%}" for v in s["agent_wall_in_latency"].values())
            st.add_row(r["label"], str(min(r["max_concurrent_problems"], r["problems_asked"])), f"{s['latency_s']:g}", str(s["requests"]),
                       f"{s['mean_in_flight']:.2f}", str(s["peak_in_flight"]), f"{s['compute_busy_fraction']:.0%}",
                       f"{s['latency_share_of_agent_busy']:.0%}", in_sleep, "yes" if meets else "NO")
        console.print(st)

    notes = notes_for(results, args)
    for line in notes:
        console.print(f"- {line}", highlight=False)
    return {"notes": notes}


def notes_for(results: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    a_runs = [r for r in results if r["label"].startswith("A")]
    b_runs = [r for r in results if r["label"].startswith("B")]
    notes = [
        "Busy fraction = actor stats()['busy_s'] / Boost wall. The Batcher runs one backend call at a time, so "
        "busy_s never overlaps itself and the fraction is at most 100%: it says the agent always had a call in "
        "flight, not how many prompts were in flight, nor whether the call was computing or waiting.",
    ]
    if b_runs:
        notes.insert(0, "A and B run on the same 2 physical cores: B's second 'node' is more processes on the same "
                     "CPUs, so B cannot be faster in raw compute here; B shows the run spreading over nodes (see "
                     "each agent's node) and finishing every problem without errors.")
    if a_runs and b_runs:
        a, b = a_runs[-1], b_runs[-1]
        rate = lambda runs: sum(r["rollouts"] for r in runs) / sum(r["wall_s"] for r in runs)  # noqa: E731
        nodes_b = {d["node"] for d in b["agents"].values()}
        rounds = ", ".join(f"{rb['rollouts_per_s'] / ra['rollouts_per_s']:.2f}x" for ra, rb in zip(a_runs, b_runs))
        spread = [r["rollouts_per_s"] for r in a_runs + b_runs]
        notes.append(f"B/A rollouts/s = {rate(b_runs) / rate(a_runs):.2f}x over {len(a_runs)} round(s) (per round: {rounds}; "
                     f"all A and B runs span {min(spread):.2f}-{max(spread):.2f} rollouts/s, so a difference inside that "
                     f"spread is load from other processes, not the node count). B agents on {len(nodes_b)} "
                     f"node(s), B sandbox actors on {', '.join(b['sandbox_nodes'])}; every problem finished without errors: "
                     f"A {all(r['complete'] for r in a_runs)}, B {all(r['complete'] for r in b_runs)}; B spread over both nodes: "
                     f"{all(r['spread_ok'] for r in b_runs)}.")
    his = [r for r in results if r.get("kind") == "hi"]
    zeros = [r for r in results if r.get("kind") == "zero"]
    ones = [r for r in results if r.get("kind") == "one"]
    if his:
        rate = lambda runs: sum(r["rollouts"] for r in runs) / sum(r["wall_s"] for r in runs)  # noqa: E731
        hi = his[0]
        lat = hi["server"]["latency_s"]
        n_hi = min(hi["max_concurrent_problems"], hi["problems_asked"])
        hi_busy = min(d["busy_fraction"] for r in his for d in r["agents"].values())
        verdict = "meets" if hi_busy >= BUSY_TARGET else "does NOT meet"
        notes.append(f"C with {n_hi} problems in flight {verdict} the >= {BUSY_TARGET:.0%} target: lowest agent busy "
                     f"fraction {hi_busy:.0%} over {len(his)} run(s) at +{lat:g} s per request.")
        if ones:
            one = ones[0]
            one_busy = min(d["busy_fraction"] for d in one["agents"].values())
            notes.append(f"C with 1 problem in flight: lowest busy {one_busy:.0%}, rollouts/s "
                         f"{one['rollouts_per_s'] / rate(his):.2f}x of {n_hi} in flight; "
                         f"{max(one['server']['agent_wall_in_latency'].values()):.0%} of the wall went to serial sleeps, and the "
                         f"sandbox had programs running {one['sandbox_busy_fraction']:.0%} of the wall: one search alternates "
                         f"LLM calls and program runs, so its agents idle while its programs run.")
        if zeros:
            ratio = rate(his) / rate(zeros)
            rounds = ", ".join(f"{h['rollouts_per_s'] / z['rollouts_per_s']:.2f}x" for h, z in zip(his, zeros))
            if ratio > 1.1:
                verdict = "the latency runs were FASTER: load from other processes dominates this comparison (see load 1m)"
            elif ratio >= 0.9:
                verdict = "no loss beyond noise: the latency is hidden"
            else:
                verdict = f"{1 - ratio:.0%} of throughput lost: the latency is NOT fully hidden"
            notes.append(f"C with {n_hi} in flight, +{lat:g} s vs no latency: rollouts/s ratio {ratio:.2f}x "
                         f"(per round: {rounds}); {verdict}.")
        sleep = max(v for r in his for v in r["server"]["agent_wall_in_latency"].values())
        compute = sum(r["server"]["compute_busy_fraction"] for r in his) / len(his)
        notes.append(
            f"What limits hiding: Batcher._drain (bdc_ray/llm/batcher.py:84) awaits each group's backend call before it "
            f"takes the next batch, and requests with different sampling (propose n={args.width}, code n={args.n_sim}, "
            f"refine n=4) are separate groups run one after another, so an agent has ONE call in flight at a time and pays "
            f"the latency once per call, serially (the HTTP requests inside one call do overlap). Concurrency hides the "
            f"latency only by making each call bigger: with {n_hi} in flight at most {sleep:.0%} of an agent's wall was "
            f"sleep and the server's model was busy {compute:.0%} of the wall ("
            + ("compute-bound: the sleeps overlapped compute for the other agent and other calls" if compute >= 0.8
               else "NOT compute-bound: the serial sleeps are exposed")
            + f"); with fewer problems or a slower endpoint the serial sleeps dominate. Busy fraction "
            f"cannot show this: busy_s includes the sleep and never overlaps itself.")
    return notes


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Fewer problems (a smoke run of every scenario).")
    parser.add_argument("--scenarios", default="ABC", help="Which scenarios to run, e.g. AB or C.")
    parser.add_argument("--problems", type=int, default=None, help="Training problems for A and B (default 12, quick 6).")
    parser.add_argument("--openai-problems", type=int, default=None, help="Training problems per C run (default 16, quick 4).")
    parser.add_argument("--repeats", type=int, default=None, help="Rounds of A then B, totals compared (default 2, quick 1).")
    parser.add_argument("--concurrency", type=int, default=8, help="max_concurrent_problems in A and B.")
    parser.add_argument("--openai-concurrency", type=int, default=16, help="max_concurrent_problems of C's high-concurrency runs.")
    parser.add_argument("--openai-max-concurrency", type=int, default=32, help="HTTP requests in flight per agent backend.")
    parser.add_argument("--latency", type=float, default=0.3, help="Seconds the server sleeps before each /v1 request.")
    parser.add_argument("--skip-zero-latency", action="store_true", help="Leave out C's no-latency reference runs.")
    parser.add_argument("--openai-rounds", type=int, default=None,
                        help="Rounds of C's latency / no-latency pair at high concurrency (default 2, quick 1).")
    parser.add_argument("--one-problems", type=int, default=None,
                        help="Problems of C's one-in-flight run (default 8, quick 2); compared by rate.")
    parser.add_argument("--server-window-ms", type=float, default=10.0, help="The server's batching window.")
    parser.add_argument("--rollouts", type=int, default=3)
    parser.add_argument("--width", type=int, default=2)
    parser.add_argument("--n-sim", type=int, default=2)
    parser.add_argument("--max-depth", type=int, default=2)
    parser.add_argument("--max-code-tokens", type=int, default=96)
    parser.add_argument("--max-thought-tokens", type=int, default=24)
    parser.add_argument("--steps", type=int, default=200, help="Training steps of the tiny agents.")
    parser.add_argument("--sandbox-workers", type=int, default=2, help="Warm workers per sandbox actor (one actor per node).")
    parser.add_argument("--match-sandbox", action="store_true",
                        help="Give A's one sandbox actor as many workers as B's two actors have together.")
    parser.add_argument("--seed", type=int, default=0, help="Synthetic suite seed.")
    parser.add_argument("--storage", default=str(ROOT / "runs" / "benchmarks" / "boost_throughput"))
    parser.add_argument("--build-root", default=str(ROOT / "runs" / "benchmarks" / "models"))
    parser.add_argument("--out", default=None, help="JSON results (default runs/benchmarks/boost_throughput[_quick].json).")
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)  # internal: run the latency server
    parser.add_argument("--serve-name", default="tiny-a", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        serve(args.serve, args.serve_name, args.latency, args.server_window_ms)
        return
    args.problems = args.problems or (6 if args.quick else 12)
    args.repeats = args.repeats or (1 if args.quick else 2)
    args.openai_rounds = args.openai_rounds or (1 if args.quick else 2)
    args.one_problems = args.one_problems or (2 if args.quick else 8)
    args.openai_problems = args.openai_problems or (4 if args.quick else 16)
    out = Path(args.out or ROOT / "runs" / "benchmarks" / f"boost_throughput{'_quick' if args.quick else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")

    began = time.perf_counter()
    results: list[dict[str, Any]] = []
    for repeat in range(args.repeats):  # A and B take turns, so load from other processes hits both alike
        if "A" in args.scenarios:
            results.append(scenario_nodes(args, stamp, nodes=1, repeat=repeat))
        if "B" in args.scenarios:
            results.append(scenario_nodes(args, stamp, nodes=2, repeat=repeat))
    if "C" in args.scenarios:
        results += scenario_openai(args, stamp, out.parent)
    extra = report(results, args)
    payload = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "args": vars(args),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()},
        "total_s": time.perf_counter() - began,
        "results": results,
        **extra,
    }
    out.write_text(json.dumps(payload, indent=2, default=str))
    print(f"written: {out} (total {payload['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
