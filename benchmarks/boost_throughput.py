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
  D  intra-tree parallelism: `parallel_rollouts` 1 vs --parallel (4) on ONE cluster, against the
     latency server (both agents `backend: openai`, --latency) and the local tiny agents, with one
     problem in flight and with many. Equal work: the same problems, `max_generations` per problem
     and `stop_on_solve` off, so every run spends its whole budget; the settings alternate over
     --parallel-rounds rounds on the same agent actors; medians. Reports rollouts/s and
     generations/s per setting and their ratio.
The batcher with mixed sampling groups (concurrent groups vs one call at a time) is measured on its
own: benchmarks/batcher_groups.py.
Busy fraction = the agent actor's `stats()['busy_s']` / the Boost run's wall; rollouts/s = the
traces' rollouts / wall; sandbox busy = wall with a program running, timed by the executor the
runner is given (support.TimedExecutor).

    .venv/bin/python benchmarks/boost_throughput.py --scenarios ABC    # ~8 min on 2 quiet cores (+1 min to build the models once)
    .venv/bin/python benchmarks/boost_throughput.py --scenarios D      # 15 min at load 20-30
    .venv/bin/python benchmarks/boost_throughput.py --quick            # fewer problems, one round of each scenario
    .venv/bin/python benchmarks/boost_throughput.py --scenarios C --latency 1.0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import math
import os
import platform
import sys
import time
from pathlib import Path
from collections.abc import Iterator
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


def config(args, run_name: str, problems: int, concurrency: int, agent_list: list, workers: int | None = None,
           search: dict[str, Any] | None = None):
    """`search` replaces the search section's knobs (default: --rollouts, --width, --n-sim, --max-depth)."""
    from bdc_ray.config import load_config

    search = search or {"rollouts": args.rollouts, "width": args.width, "n_sim": args.n_sim, "max_depth": args.max_depth}
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
                             "search": search}},
    })


@contextlib.contextmanager
def boost_parts(cfg) -> Iterator[tuple[list, Any, float, list[str]]]:
    """The agent actors and the sandbox pool of a config, killed afterwards: (handles, pool,
    setup seconds, the sandbox actors' node ids). Several measured runs may share them."""
    import ray

    from bdc_ray.boost.stage import start_agents
    from bdc_ray.sandbox.ray_pool import make_pool

    setup = time.perf_counter()
    handles = start_agents(cfg.models)  # builds (or reuses) the tiny models, then waits for every actor
    pool = make_pool(cfg.sandbox, cfg.resources.sandbox.ray_options())
    try:
        sandbox_nodes = ray.get([a.node_id.remote() for a in pool.actors])
        yield handles, pool, time.perf_counter() - setup, sandbox_nodes
    finally:
        pool.shutdown()
        for h in handles:
            for a in h.actors:
                ray.kill(a)


def measured_boost(cfg, label: str, server: LatencyServer | None = None) -> dict[str, Any]:
    """One Boost run on its own agent actors and sandbox pool."""
    with boost_parts(cfg) as parts:
        return measured_run(cfg, parts, label, server)


def measured_run(cfg, parts, label: str, server: LatencyServer | None = None) -> dict[str, Any]:
    """The Boost stage's parts with a timed executor; agent stats read before and after the run
    (differences: the actors may have served earlier runs)."""
    import ray

    from bdc_ray.artifacts.traces import read_traces
    from bdc_ray.boost.runner import BoostRunner
    from bdc_ray.boost.stage import first_per_group, load_stage_problems

    handles, pool, setup_s, sandbox_nodes = parts
    stage = cfg.stages.boost
    problems = first_per_group(load_stage_problems(stage, cfg.suite), stage.max_problems)
    executor = TimedExecutor(pool)
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
            # calls x latency / wall: the server's sleep an agent's calls went through per second of wall (the
            # wall spent in it when its calls run one at a time; above 100% when they overlap).
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


def scenario_parallel(args, stamp: str, out_dir: Path) -> list[dict[str, Any]]:
    """D: parallel_rollouts 1 vs --parallel on one Ray cluster, per backend (the latency server, the
    local tiny agents) and per shape (one problem in flight, many). Equal work: every run searches
    the same problems with the same generation budget and stop_on_solve off, so it spends all of it.
    Each backend's agent actors and sandbox pool serve all of its runs; the two settings take turns,
    in swapped order every other round (1 then P, P then 1, ...)."""
    from bdc_ray.tiny import TinyModelConfig, build_tiny

    backends = [b.strip() for b in args.parallel_backends.split(",") if b.strip()]
    unknown = set(backends) - {"openai", "tiny"}
    if unknown:
        raise SystemExit(f"--parallel-backends: unknown {sorted(unknown)} (openai, tiny)")
    shapes = [("one", 1, args.parallel_one_problems), ("many", args.parallel_concurrency, args.parallel_problems)]
    settings = [1, args.parallel]
    results: list[dict[str, Any]] = []
    server_cm: Any = contextlib.nullcontext()
    if "openai" in backends:
        path = str(build_tiny(TinyModelConfig.model_validate(tiny_recipes(args)["tiny-a"]), Path(args.build_root).resolve(),
                              progress=False))
        server_cm = LatencyServer(path, "tiny-a", args.latency, args.server_window_ms, out_dir / "boost_throughput_server_D.log")
    with server_cm as server, local_cluster(1, 2, {AGENT_SLOT: 2, SANDBOX_SLOT: 1}):
        for backend in backends:
            agent_list = agents(args, server.base_url) if backend == "openai" else agents(args)
            with boost_parts(parallel_config(args, stamp, backend, agent_list, "one", 1, 1, 1, 0)) as parts:
                for r in range(args.parallel_rounds):
                    for shape, in_flight, problems in shapes:
                        for pr in settings if r % 2 == 0 else settings[::-1]:
                            cfg = parallel_config(args, stamp, backend, agent_list, shape, in_flight, problems, pr, r)
                            label = f"D: {backend}, {shape} in flight, parallel_rollouts {pr} #{r + 1}"
                            result = measured_run(cfg, parts, label, server if backend == "openai" else None)
                            results.append({**result, "kind": "parallel", "backend": backend, "shape": shape,
                                            "parallel_rollouts": pr, "round": r + 1,
                                            "generations_per_s": result["llm_generations"] / result["wall_s"]})
    return results


def parallel_config(args, stamp: str, backend: str, agent_list: list, shape: str, in_flight: int, problems: int,
                    parallel: int, round_: int):
    """One D run: the whole budget spent (no rollout cap, stop_on_solve off), `parallel` loops per tree."""
    search = {"rollouts": None, "max_generations": args.parallel_generations, "stop_on_solve": False,
              "width": args.width, "n_sim": args.n_sim, "max_depth": args.max_depth, "parallel_rollouts": parallel}
    return config(args, f"bt-{stamp}-D-{backend}-{shape}-p{parallel}-{round_}", problems, in_flight, agent_list,
                  search=search)


def parallel_summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scenario D's runs paired up: per (backend, shape) and setting, the median rollouts/s and
    generations/s over rounds, and parallel / sequential as the ratio of those medians and per round
    (a round's ratio compares the two runs of one round, which ran back to back). Pure."""
    out = []
    for backend, shape in dict.fromkeys((r["backend"], r["shape"]) for r in runs):
        mine = [r for r in runs if r["backend"] == backend and r["shape"] == shape]
        settings = sorted({r["parallel_rollouts"] for r in mine})
        lo, hi = settings[0], settings[-1]
        rows = {}
        for pr in settings:
            these = [r for r in mine if r["parallel_rollouts"] == pr]
            rows[pr] = {"parallel_rollouts": pr, "runs": len(these), "in_flight": these[0]["in_flight"],
                        "problems": these[0]["problems_asked"],
                        "generations": sorted({r["llm_generations"] for r in these}),
                        "rollouts": [r["rollouts"] for r in these],
                        "rollouts_per_s": statistics.median(r["rollouts_per_s"] for r in these),
                        "generations_per_s": statistics.median(r["generations_per_s"] for r in these),
                        "per_round_generations_per_s": [r["generations_per_s"] for r in these]}
        by_round: dict[int, dict[int, dict[str, Any]]] = {}
        for r in mine:
            by_round.setdefault(r["round"], {})[r["parallel_rollouts"]] = r
        pairs = [rs for _, rs in sorted(by_round.items()) if lo in rs and hi in rs]
        ratios = {key: rows[hi][key] / rows[lo][key] if rows[lo][key] else None
                  for key in ("rollouts_per_s", "generations_per_s")}
        out.append({"backend": backend, "shape": shape, "settings": [rows[pr] for pr in settings],
                    "rollouts_ratio": ratios["rollouts_per_s"], "generations_ratio": ratios["generations_per_s"],
                    "round_generations_ratios": [p[hi]["generations_per_s"] / p[lo]["generations_per_s"] for p in pairs],
                    "equal_work": len({g for pr in settings for g in rows[pr]["generations"]}) == 1
                    and all(r["complete"] for r in mine)})
    return out


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
    d_runs = [r for r in results if r.get("kind") == "parallel"]
    groups = [[r for r in results if r["label"][0] in "AB"], [r for r in results if r["label"].startswith("C")]]
    groups += [[r for r in d_runs if (r["backend"], r["shape"]) == key]
               for key in dict.fromkeys((r["backend"], r["shape"]) for r in d_runs)]
    for group in groups:
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
    if d_runs:
        summary = parallel_summary(d_runs)
        rows = []
        for g in summary:
            for k, row in enumerate(g["settings"]):
                last = k == len(g["settings"]) - 1
                rows.append([g["backend"], f"{row['in_flight']} ({row['problems']} problems)", str(row["parallel_rollouts"]),
                             "/".join(map(str, row["generations"])), ", ".join(map(str, row["rollouts"])),
                             f"{row['rollouts_per_s']:.2f}", f"{row['generations_per_s']:.2f}",
                             ", ".join(f"{v:.2f}" for v in row["per_round_generations_per_s"]),
                             f"{g['rollouts_ratio']:.2f}x" if last and g["rollouts_ratio"] else "",
                             f"{g['generations_ratio']:.2f}x" if last and g["generations_ratio"] else "",
                             ", ".join(f"{v:.2f}x" for v in g["round_generations_ratios"]) if last else ""])
        show("Scenario D: intra-tree parallelism (medians over rounds; ratio: parallel / sequential)",
             ("backend", "in flight", "parallel rollouts", "generations", "rollouts per run", "rollouts/s", "generations/s",
              "generations/s per round", "rollouts/s ratio", "generations/s ratio", "per-round ratio"), rows)
    notes = ["Busy fraction = actor busy_s / Boost wall: the wall during which the agent had at least one backend call "
             "in flight (overlapping calls counted once), not how many prompts, nor whether it computed or waited."]
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
                         "latency is not hidden).")
    if d_runs:
        for g in parallel_summary(d_runs):
            hi = g["settings"][-1]["parallel_rollouts"]
            notes.append(f"D {g['backend']}, {g['settings'][0]['in_flight']} in flight: parallel_rollouts {hi} gives "
                         f"{g['generations_ratio']:.2f}x the generations/s of 1 ({g['rollouts_ratio']:.2f}x rollouts/s); "
                         f"equal work (same generations in every run): {g['equal_work']}.")
    for line in notes:
        console.print(f"- {line}", highlight=False)
    return notes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="Fewer problems (a smoke run of every scenario).")
    p.add_argument("--scenarios", default="ABCD", help="Which scenarios to run, e.g. AB, C or D.")
    for flag, help_ in (("--problems", "A and B problems (12, quick 6)"), ("--openai-problems", "problems per C run (16, quick 4)"),
                        ("--repeats", "rounds of A then B (2, quick 1)"), ("--openai-rounds", "rounds of C's pair (2, quick 1)"),
                        ("--one-problems", "problems of C's one-in-flight run (8, quick 2)"),
                        ("--parallel-rounds", "D: rounds of each sequential / parallel pair (3, quick 1)"),
                        ("--parallel-problems", "D: problems of the many-in-flight runs (8, quick 4)")):
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
    p.add_argument("--parallel", type=int, default=4, help="D: parallel_rollouts of the parallel setting (vs 1).")
    p.add_argument("--parallel-backends", default="openai,tiny",
                   help="D: openai (the latency server, --latency) and/or tiny (the local transformers agents).")
    p.add_argument("--parallel-generations", type=int, default=48,
                   help="D: max_generations per problem, all spent (stop_on_solve off): the same work in both settings.")
    p.add_argument("--parallel-concurrency", type=int, default=8, help="D: max_concurrent_problems of the many-in-flight runs.")
    p.add_argument("--parallel-one-problems", type=int, default=1, help="D: problems of the one-in-flight runs (one at a time).")
    p.add_argument("--match-sandbox", action="store_true", help="Give A's one sandbox actor as many workers as B's two.")
    p.add_argument("--storage", default=str(ROOT / "runs" / "benchmarks" / "boost_throughput"))
    p.add_argument("--build-root", default=str(ROOT / "runs" / "benchmarks" / "models"))
    p.add_argument("--out", default=None, help="JSON results (default runs/benchmarks/boost_throughput[_quick].json).")
    args = p.parse_args()
    for name, full, quick in (("problems", 12, 6), ("repeats", 2, 1), ("openai_rounds", 2, 1), ("one_problems", 8, 2),
                              ("openai_problems", 16, 4), ("parallel_rounds", 3, 1), ("parallel_problems", 8, 4)):
        setattr(args, name, getattr(args, name) or (quick if args.quick else full))
    out = Path(args.out or ROOT / "runs" / "benchmarks" / f"boost_throughput{'_quick' if args.quick else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp, began, results = time.strftime("%Y%m%d-%H%M%S"), time.perf_counter(), []

    def write(notes: list[str]) -> None:
        # After every scenario: Ray may crash at interpreter exit after several clusters in one process
        # (benchmarks/support.py), and a later scenario may fail; what was measured is on disk by then.
        payload = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "args": vars(args), "notes": notes,
                   "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()},
                   "total_s": time.perf_counter() - began, "results": results}
        if any(r.get("kind") == "parallel" for r in results):
            payload["parallel_summary"] = parallel_summary([r for r in results if r.get("kind") == "parallel"])
        out.write_text(json.dumps(payload, indent=2, default=str))

    for repeat in range(args.repeats):  # A and B take turns, so load from other processes hits both alike
        results += [scenario_nodes(args, stamp, n, repeat) for n, s in ((1, "A"), (2, "B")) if s in args.scenarios]
    write([])
    if "C" in args.scenarios:
        results += scenario_openai(args, stamp, out.parent)
        write([])
    if "D" in args.scenarios:
        results += scenario_parallel(args, stamp, out.parent)
        write([])
    notes = report(results)
    write(notes)
    print(f"written: {out} (total {time.perf_counter() - began:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
