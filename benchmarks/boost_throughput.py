"""Boost throughput: rollouts/s and agent busy fraction on 1 vs 2 local nodes, and behind a slow endpoint.

Scenarios run one after the other in ONE invocation (compare ratios, not absolute numbers: the
machine is shared), each on a fresh local `ray.cluster_utils.Cluster` and a fresh run name:
  A  one node (2 CPUs): two tiny agents (1 CPU each, `tiny:` recipes built once into
     runs/benchmarks/models) and the sandbox pool (one actor per node).
  B  two nodes (2 CPUs each) on the SAME 2 physical cores: each agent on its own node, a sandbox
     actor per node. B cannot be faster in raw compute here; it shows the run spreading and
     staying correct. A and B take turns (--repeats) so load from other processes hits both alike.
  C  both agents `backend: openai` against an OpenAI-compatible server of tiny agent A that sleeps
     a fixed latency before every request (benchmarks/support.py): many problems in flight with
     the latency, one in flight with it, many in flight without it.
Busy fraction = the agent actor's `stats()['busy_s']` / the Boost run's wall; rollouts/s = the
traces' rollouts / wall; sandbox busy = wall with a program running, timed by the executor the
runner is given (support.TimedExecutor).

    .venv/bin/python benchmarks/boost_throughput.py            # ~8 min on 2 quiet cores (+1 min to build the models once)
    .venv/bin/python benchmarks/boost_throughput.py --quick    # fewer problems, one round: ~3 min
    .venv/bin/python benchmarks/boost_throughput.py --scenarios C --latency 1.0
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from support import ROOT, LatencyServer, TimedExecutor, local_cluster  # first: the repository on the path

BUSY_TARGET = 0.90
AGENT_SLOT = "bench_agent_slot"  # custom resource: how many agents a node may host
SANDBOX_SLOT = "bench_sandbox_slot"  # one sandbox actor per node (see `overrides`)


def tiny_recipes(args) -> dict[str, dict[str, Any]]:
    synth = {"train_per_family": 200, "heldout_per_family": 0, "heldout_comp_per_family": 0}
    common = {"heads": 4, "vocab_size": 512, "context": 256, "steps": args.steps, "synth": synth}
    return {"tiny-a": {"name": "bench-a", "seed": 0, "layers": 2, "hidden": 96, **common},
            "tiny-b": {"name": "bench-b", "seed": 1, "layers": 2, "hidden": 64,
                       "families": ["arith", "string", "list", "count"], **common}}


def agents(args, base_url: str | None = None) -> list[dict[str, Any]]:
    """The two tiny agents, or (with `base_url`) both talking to the latency server."""
    common = {"resources": {"num_cpus": 1, "resources": {AGENT_SLOT: 1}},
              "prompts": {"max_thought_tokens": args.max_thought_tokens, "max_code_tokens": args.max_code_tokens}}
    if base_url is None:
        return [{"name": name, "tiny": recipe, **common} for name, recipe in tiny_recipes(args).items()]
    model = {"backend": "openai", "path": "tiny-a", "base_url": base_url, "max_concurrency": args.openai_max_concurrency,
             "timeout_s": 300.0, "max_retries": 2}
    return [{"name": name, "model": model, "style": "completion", **common} for name in tiny_recipes(args)]


def config(args, run_name: str, problems: int, concurrency: int, agent_list: list, workers: int | None = None):
    from bdc_ray.config import load_config

    return load_config(overrides={
        "run_name": run_name, "storage_path": str(Path(args.storage).resolve()),
        "data": {"synthetic": {"seed": args.seed, "train_per_family": math.ceil(problems / 6),
                               "heldout_per_family": 0, "heldout_comp_per_family": 0}},
        "models": {"build_root": str(Path(args.build_root).resolve()), "agents": agent_list},
        # The sandbox asks for no CPU (agents hold them) but for a one-per-node slot: Ray does not
        # honour the pool's soft node affinity for actors that request no resource at all.
        "resources": {"sandbox": {"num_cpus": 0, "resources": {SANDBOX_SLOT: 1}}},
        "sandbox": {"actors": None, "workers_per_actor": workers or args.sandbox_workers,
                    "limits": {"time_s": 2, "program_time_s": 10}},
        "stages": {"boost": {"problems": "synthetic:train", "max_problems": problems, "max_concurrent_problems": concurrency,
                             "search": {"rollouts": args.rollouts, "width": args.width, "n_sim": args.n_sim,
                                        "max_depth": args.max_depth}}},
    })


def measured_boost(cfg, label: str, server: LatencyServer | None = None) -> dict[str, Any]:
    """The Boost stage's parts with a timed executor; agent stats read before the actors die."""
    import ray

    from bdc_ray.artifacts.traces import read_traces
    from bdc_ray.boost.runner import BoostRunner
    from bdc_ray.boost.stage import first_per_group, load_stage_problems, start_agents
    from bdc_ray.sandbox.ray_pool import make_pool

    stage = cfg.stages.boost
    problems = first_per_group(load_stage_problems(stage, cfg.suite), stage.max_problems)
    setup = time.perf_counter()
    handles = start_agents(cfg.models)  # builds (or reuses) the tiny models, then waits for every actor
    pool = make_pool(cfg.sandbox, cfg.resources.sandbox.ray_options())
    try:
        sandbox_nodes = ray.get([a.node_id.remote() for a in pool.actors])
        setup_s, executor = time.perf_counter() - setup, TimedExecutor(pool)
        runner = BoostRunner(agents=handles, executor=executor, search=stage.search, layout=cfg.layout,
                             max_concurrent_problems=stage.max_concurrent_problems, max_attempts=stage.max_attempts)
        actors = {h.name: h.actors[0] for h in handles}
        before = {n: ray.get(a.stats.remote()) for n, a in actors.items()}
        server_before = server.stats() if server else None
        if server:
            server.reset_peak()
        load_before, started = os.getloadavg()[0], time.perf_counter()
        summary = runner.run(problems)
        wall = time.perf_counter() - started
        after = {n: ray.get(a.stats.remote()) for n, a in actors.items()}
        server_after = server.stats() if server else None
        records = read_traces(cfg.layout.traces_dir)
    finally:
        pool.shutdown()
        for h in handles:
            for a in h.actors:
                ray.kill(a)
    alive = [n for n in ray.nodes() if n.get("Alive")]
    heads = [n["NodeID"] for n in alive if "node:__internal_head__" in n.get("Resources", {})]
    others = [n["NodeID"] for n in alive if n["NodeID"] not in heads]
    short = {**{nid: "head" for nid in heads}, **{nid: f"node{i + 1}" for i, nid in enumerate(others)}}
    rows = {}
    for name in actors:
        d = {k: after[name][k] - before[name][k] for k in ("requests", "backend_calls", "prompts", "busy_s", "completion_tokens")}
        rows[name] = {**d, "busy_fraction": d["busy_s"] / wall, "node": short.get(after[name]["node_id"], "?")}
    rollouts, tokens = sum(r.rollouts for r in records), sum(d["completion_tokens"] for d in rows.values())
    result = {
        "label": label, "run_dir": cfg.run_dir, "problems": len(records), "problems_asked": len(problems),
        "errors": summary.get("errors", 0), "in_flight": min(stage.max_concurrent_problems, len(problems)),
        "wall_s": wall, "setup_s": setup_s, "loadavg_1m": [load_before, os.getloadavg()[0]], "rollouts": rollouts,
        "rollouts_per_s": rollouts / wall, "problems_per_s": len(records) / wall,
        "solved_hidden": sum(r.hidden_passed_all for r in records),
        "llm_generations": sum(sum(r.llm_generations.values()) for r in records),
        "sandbox_runs": sum(sum(r.sandbox_runs.values()) for r in records), "sandbox_calls": executor.calls,
        "sandbox_busy_fraction": executor.busy_s / wall, "tokens_per_s": tokens / wall, "nodes": len(alive),
        "sandbox_nodes": sorted(short.get(n, "?") for n in sandbox_nodes), "agents": rows,
    }
    if server_before and server_after:
        latency, calls = server_after["latency_s"], sum(d["backend_calls"] for d in rows.values())
        busy = sum(d["busy_s"] for d in rows.values())
        result["server"] = {
            "latency_s": latency, "requests": server_after["requests"] - server_before["requests"],
            "mean_in_flight": (server_after["area"] - server_before["area"]) / wall, "peak_in_flight": server_after["peak"],
            "compute_busy_fraction": (server_after["compute_busy_s"] - server_before["compute_busy_s"]) / wall,
            "latency_share_of_agent_busy": min(1.0, calls * latency / busy) if busy else 0.0,
            # An agent's calls run one at a time, so calls x latency is wall it spent in the server's sleep.
            "agent_wall_in_latency": {n: d["backend_calls"] * latency / wall for n, d in rows.items()},
        }
    result["complete"] = result["problems"] == len(problems) and result["errors"] == 0
    result["spread_ok"] = (len({d["node"] for d in rows.values()}) == min(len(rows), len(alive))
                           and len(set(result["sandbox_nodes"])) == min(len(sandbox_nodes), len(alive)))
    print(f"[{label}] {result['problems']}/{len(problems)} problems, {rollouts} rollouts in {wall:.1f} s, busy "
          + ", ".join(f"{n} {d['busy_fraction']:.0%} on {d['node']}" for n, d in rows.items()), flush=True)
    return result


def scenario_nodes(args, stamp: str, nodes: int, repeat: int) -> dict[str, Any]:
    tag = "A" if nodes == 1 else "B"
    label = f"{tag}: {nodes} node{'s' if nodes > 1 else ''}" + (f" #{repeat + 1}" if args.repeats > 1 else "")
    # One node: both agent slots on the head. Two nodes: one slot each, so the agents spread.
    with local_cluster(nodes, 2, {AGENT_SLOT: 2 if nodes == 1 else 1, SANDBOX_SLOT: 1}):
        workers = args.sandbox_workers * (2 if nodes == 1 and args.match_sandbox else 1)
        cfg = config(args, f"bt-{stamp}-{tag}-{nodes}node-{repeat}", args.problems, args.concurrency, agents(args), workers)
        return {**measured_boost(cfg, label), "sandbox_workers": workers * nodes}


def scenario_openai(args, stamp: str, out_dir: Path) -> list[dict[str, Any]]:
    from bdc_ray.tiny import TinyModelConfig, build_tiny

    path = str(build_tiny(TinyModelConfig.model_validate(tiny_recipes(args)["tiny-a"]), Path(args.build_root).resolve(),
                          progress=False))
    runs = []  # (label, latency, problems in flight, problems, kind): the latency and no-latency runs take turns
    for k in range(args.openai_rounds):
        suffix = f" #{k + 1}" if args.openai_rounds > 1 else ""
        runs.append((f"C: +{args.latency:g} s{suffix}", args.latency, args.openai_concurrency, args.openai_problems, "hi"))
        if not args.skip_zero_latency:
            runs.append((f"C: +0 s{suffix}", 0.0, args.openai_concurrency, args.openai_problems, "zero"))
    runs.append((f"C: +{args.latency:g} s", args.latency, 1, args.one_problems, "one"))
    results = []
    with LatencyServer(path, "tiny-a", args.latency, args.server_window_ms, out_dir / "boost_throughput_server.log") as server:
        with local_cluster(1, 2, {AGENT_SLOT: 2, SANDBOX_SLOT: 1}):
            for i, (label, latency, concurrency, problems, kind) in enumerate(runs):
                server.set_latency(latency)
                cfg = config(args, f"bt-{stamp}-C-{kind}{i}", problems, concurrency, agents(args, server.base_url))
                results.append({**measured_boost(cfg, label, server), "kind": kind})
    return results


def report(results: list[dict[str, Any]]) -> list[str]:
    """The tables, and the notes that read the ratios out of them."""
    from rich.table import Table

    from bdc_ray.console import wide_console

    names, console = list(dict.fromkeys(n for r in results for n in r["agents"])), wide_console()
    rate = lambda runs: sum(r["rollouts"] for r in runs) / sum(r["wall_s"] for r in runs)  # noqa: E731

    def show(title: str, columns: tuple[str, ...], rows: list[list[str]]) -> None:
        table = Table(title=title)
        for col in columns:
            table.add_column(col, justify="left" if col == "scenario" else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)

    speed, where = [], []
    for group in ([r for r in results if not r["label"].startswith("C")], [r for r in results if r["label"].startswith("C")]):
        for r in group:
            busy = [f"{r['agents'][n]['busy_fraction']:.0%} ({r['agents'][n]['node']})" if n in r["agents"] else "-" for n in names]
            speed.append([r["label"], str(r["in_flight"]), f"{r['problems']}/{r['problems_asked']}" + ("" if r["complete"] else " !"),
                          str(r["rollouts"]), f"{r['wall_s']:.1f}", f"{r['rollouts_per_s']:.2f}",
                          f"{r['rollouts_per_s'] / group[0]['rollouts_per_s']:.2f}x" if group[0]["rollouts_per_s"] else "-",
                          f"{r['problems_per_s']:.3f}", *busy])
            calls, reqs, busy_s = (sum(d[k] for d in r["agents"].values()) for k in ("backend_calls", "requests", "busy_s"))
            where.append([r["label"], str(r["in_flight"]), f"{r['tokens_per_s']:.0f}", f"{r['sandbox_busy_fraction']:.0%}",
                          str(calls), f"{reqs / calls:.1f}" if calls else "-", f"{busy_s / calls:.2f}" if calls else "-",
                          str(r["llm_generations"]), str(r["sandbox_runs"]), str(r["solved_hidden"]),
                          "{:.1f} -> {:.1f}".format(*r["loadavg_1m"])])
    show("Boost throughput, one run side by side (ratio: rollouts/s vs the first row of its group)",
         ("scenario", "in flight", "problems", "rollouts", "wall s", "rollouts/s", "ratio", "problems/s",
          *(f"{n} busy (node)" for n in names)), speed)
    show("Where the time went (agent calls are the Batcher's backend calls; sandbox: wall with a program running)",
         ("scenario", "in flight", "tokens/s", "sandbox busy", "agent calls", "requests/call", "s/call", "LLM gens",
          "sandbox runs", "solved", "load 1m"), where)
    served = [r for r in results if "server" in r]
    if served:
        show("Scenario C: the latency server's view",
             ("scenario", "in flight", "latency s", "HTTP requests", "mean HTTP in flight", "peak", "server compute busy",
              "agent busy in sleep", "agent wall in sleep", f"agent busy >= {BUSY_TARGET:.0%}"),
             [[r["label"], str(r["in_flight"]), f"{s['latency_s']:g}", str(s["requests"]), f"{s['mean_in_flight']:.2f}",
               str(s["peak_in_flight"]), f"{s['compute_busy_fraction']:.0%}", f"{s['latency_share_of_agent_busy']:.0%}",
               ", ".join(f"{v:.0%}" for v in s["agent_wall_in_latency"].values()),
               "yes" if all(d["busy_fraction"] >= BUSY_TARGET for d in r["agents"].values()) else "NO"]
              for r, s in ((r, r["server"]) for r in served)])
    notes = ["Busy fraction = actor busy_s / Boost wall; the Batcher runs one backend call per agent at a time, so it "
             "says an agent always had a call in flight, not how many prompts, nor whether it computed or waited."]
    a_runs, b_runs = [r for r in results if r["label"].startswith("A")], [r for r in results if r["label"].startswith("B")]
    if a_runs and b_runs:
        rounds = ", ".join(f"{b['rollouts_per_s'] / a['rollouts_per_s']:.2f}x" for a, b in zip(a_runs, b_runs))
        spread = [r["rollouts_per_s"] for r in a_runs + b_runs]
        notes.append(f"B/A rollouts/s = {rate(b_runs) / rate(a_runs):.2f}x over {len(a_runs)} round(s) (per round {rounds}; "
                     f"all runs span {min(spread):.2f}-{max(spread):.2f} rollouts/s: inside that is load, not nodes). "
                     f"Every problem finished without errors: A {all(r['complete'] for r in a_runs)}, "
                     f"B {all(r['complete'] for r in b_runs)}; B spread over both nodes: {all(r['spread_ok'] for r in b_runs)}.")
    his, zeros, ones = ([r for r in results if r.get("kind") == k] for k in ("hi", "zero", "one"))
    if his:
        lowest = min(d["busy_fraction"] for r in his for d in r["agents"].values())
        notes.append(f"C with {his[0]['in_flight']} in flight {'meets' if lowest >= BUSY_TARGET else 'does NOT meet'} the "
                     f">= {BUSY_TARGET:.0%} target: lowest agent busy fraction {lowest:.0%} at +{his[0]['server']['latency_s']:g} s.")
        if ones:
            notes.append(f"C with 1 in flight: rollouts/s {ones[0]['rollouts_per_s'] / rate(his):.2f}x of many in flight; "
                         f"sandbox busy {ones[0]['sandbox_busy_fraction']:.0%}: one search alternates LLM calls and program runs.")
        if zeros:
            notes.append(f"C latency vs none, many in flight: rollouts/s ratio {rate(his) / rate(zeros):.2f}x (below 0.9: the "
                         "latency is not hidden; each agent pays it once per backend call, one call at a time).")
    for line in notes:
        console.print(f"- {line}", highlight=False)
    return notes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="Fewer problems (a smoke run of every scenario).")
    p.add_argument("--scenarios", default="ABC", help="Which scenarios to run, e.g. AB or C.")
    for flag, help_ in (("--problems", "A and B problems (12, quick 6)"), ("--openai-problems", "problems per C run (16, quick 4)"),
                        ("--repeats", "rounds of A then B (2, quick 1)"), ("--openai-rounds", "rounds of C's pair (2, quick 1)"),
                        ("--one-problems", "problems of C's one-in-flight run (8, quick 2)")):
        p.add_argument(flag, type=int, default=None, help=help_)
    p.add_argument("--concurrency", type=int, default=8, help="max_concurrent_problems in A and B.")
    p.add_argument("--openai-concurrency", type=int, default=16, help="max_concurrent_problems of C's many-in-flight runs.")
    p.add_argument("--openai-max-concurrency", type=int, default=32, help="HTTP requests in flight per agent backend.")
    p.add_argument("--latency", type=float, default=0.3, help="Seconds the server sleeps before each /v1 request.")
    p.add_argument("--skip-zero-latency", action="store_true", help="Leave out C's no-latency reference runs.")
    p.add_argument("--server-window-ms", type=float, default=10.0, help="The server's batching window.")
    for flag, default in (("--rollouts", 3), ("--width", 2), ("--n-sim", 2), ("--max-depth", 2), ("--max-code-tokens", 96),
                          ("--max-thought-tokens", 24), ("--steps", 200), ("--sandbox-workers", 2), ("--seed", 0)):
        p.add_argument(flag, type=int, default=default)
    p.add_argument("--match-sandbox", action="store_true", help="Give A's one sandbox actor as many workers as B's two.")
    p.add_argument("--storage", default=str(ROOT / "runs" / "benchmarks" / "boost_throughput"))
    p.add_argument("--build-root", default=str(ROOT / "runs" / "benchmarks" / "models"))
    p.add_argument("--out", default=None, help="JSON results (default runs/benchmarks/boost_throughput[_quick].json).")
    args = p.parse_args()
    for name, full, quick in (("problems", 12, 6), ("repeats", 2, 1), ("openai_rounds", 2, 1), ("one_problems", 8, 2),
                              ("openai_problems", 16, 4)):
        setattr(args, name, getattr(args, name) or (quick if args.quick else full))
    out = Path(args.out or ROOT / "runs" / "benchmarks" / f"boost_throughput{'_quick' if args.quick else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp, began, results = time.strftime("%Y%m%d-%H%M%S"), time.perf_counter(), []
    for repeat in range(args.repeats):  # A and B take turns, so load from other processes hits both alike
        results += [scenario_nodes(args, stamp, n, repeat) for n, s in ((1, "A"), (2, "B")) if s in args.scenarios]
    if "C" in args.scenarios:
        results += scenario_openai(args, stamp, out.parent)
    notes = report(results)
    payload = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "args": vars(args), "notes": notes,
               "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()},
               "total_s": time.perf_counter() - began, "results": results}
    out.write_text(json.dumps(payload, indent=2, default=str))
    print(f"written: {out} (total {payload['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
