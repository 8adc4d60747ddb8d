"""Boost's tree vs best-of-N sampling at EQUAL LLM generations, on problems built to need search.

The problems are TRAINING problems of the multi-part families (what Boost searches: no held-out
problem is touched), where the plan decides success and the public tests give partial credit;
the agents are the teachers of `benchmarks/teachers.yaml` (merged over --config). Per sampling
seed, every problem is solved by
  - best_of_n_same_agent / best_of_n_other_agent: one teacher's plain samples, public-test filter;
  - best_of_n_pooled: both teachers' plain samples at the same TOTAL generations (half each);
  - tree_1_agent: MC-Tree-of-Agents with the first teacher;
  - tree_2_agents: MC-Tree-of-Agents with both teachers;
each counted the same way (one generation per thought, program, continuation or refinement).
Every method runs ONCE per seed at the largest budget and is read at every smaller one: best-of-N
as its first b samples (pooled: alternating teachers), a tree through its anytime list (the
chosen program after b generations). Reported: the share of problems whose chosen program passes
every HIDDEN test, per method and budget (mean over seeds and problems), paired bootstrap 95%
intervals over problems (per-problem differences averaged over seeds), what the trees spent
their generations on, and the share of problems the 2-agent tree solved at its root.

    .venv/bin/python benchmarks/boost_vs_sampling.py --suite-seed 11 --seeds 0,1,2 --budget 8,16,32 --out runs/benchmarks/boost_vs_sampling

Writes DIR/summary.json, DIR/anytime.png and DIR/rows.jsonl (one line per seed and problem; a
re-run with the same settings resumes from it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

from support import ROOT  # first: the repository on the path

from rich.table import Table  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from bdc_ray.boost import SearchConfig  # noqa: E402
from bdc_ray.boost.search import MCTreeOfAgents  # noqa: E402
from bdc_ray.boost.stage import start_agents  # noqa: E402
from bdc_ray.config import load_config  # noqa: E402
from bdc_ray.eval.bootstrap import paired_bootstrap  # noqa: E402
from bdc_ray.console import wide_console  # noqa: E402
from bdc_ray.llm.actors import agenerate  # noqa: E402
from bdc_ray.llm.base import SamplingParams  # noqa: E402
from bdc_ray.problems.synth import MULTI_PART_FAMILIES, SynthConfig, generate_suite  # noqa: E402
from bdc_ray.ray_session import init_ray  # noqa: E402
from bdc_ray.sandbox.ray_pool import make_pool  # noqa: E402

TEACHERS = ROOT / "benchmarks" / "teachers.yaml"
BEST_OF_N = ("best_of_n_same_agent", "best_of_n_other_agent", "best_of_n_pooled")
TREES = ("tree_1_agent", "tree_2_agents")
METHODS = (*BEST_OF_N, *TREES)
DIFFS = {
    "tree_2_agents-best_of_n_pooled": ("tree_2_agents", "best_of_n_pooled"),
    "tree_1_agent-best_of_n_same_agent": ("tree_1_agent", "best_of_n_same_agent"),
    "tree_2_agents-tree_1_agent": ("tree_2_agents", "tree_1_agent"),
}


# --- one problem, one seed -------------------------------------------------------------------


def records(rewards: list[float]) -> list[int]:
    """Positions where the chosen program changes: the first of the best so far (ties keep the earlier)."""
    out, best = [], None
    for i, reward in enumerate(rewards):
        if best is None or reward > best:
            out.append(i)
            best = reward
    return out


def interleave(a: list[Any], b: list[Any]) -> list[Any]:
    """A1, B1, A2, B2, ...: pooled best-of-N after g generations holds ceil(g/2) of A's and floor(g/2) of B's."""
    return [x for pair in zip(a, b) for x in pair]


async def sample_plain(agent, executor, problem, n: int) -> list[dict[str, Any]]:
    programs = await agent.write_code(problem.public_view(), [], n)
    results = await asyncio.gather(*(executor.arun(p, problem.public_tests) for p in programs))
    return [{"program": p, "reward": r.pass_rate} for p, r in zip(programs, results)]


async def run_tree(searcher, problem) -> dict[str, Any]:
    result = await searcher.search(problem.public_view())
    return {
        "anytime": [point.model_dump() for point in result.anytime],
        "used": sum(result.llm_generations.values()),
        "kinds": result.generations_by_kind,
        "solved_by": result.solved_by,
        "rollouts": result.rollouts,
        "depth": result.tree_depth,
        "size": result.tree_size,
        "best_agent": result.best_agent,
        "best_thought_agents": result.best_thought_agents,
        "best_prefix_depth": next((p.prefix_depth for p in result.anytime[-1:]), None),
        "mixed": len({*result.best_thought_agents, result.best_agent} - {None}) > 1,  # thoughts and program by two agents
        "generations_by_agent": result.llm_generations,
    }


async def solve_problem(problem, agents, searchers, executor, budget: int) -> dict[str, Any]:
    """Every method on one problem; hidden tests run on every program a method ever chooses."""
    first, second = agents
    plain_a, plain_b, *trees = await asyncio.gather(
        sample_plain(first, executor, problem, budget),
        sample_plain(second, executor, problem, budget),
        *(run_tree(searchers[name], problem) for name in TREES),
    )
    chosen = {plain_a[i]["program"] for i in records([s["reward"] for s in plain_a])}
    chosen |= {plain_b[i]["program"] for i in records([s["reward"] for s in plain_b])}
    pooled = interleave(plain_a, plain_b)
    chosen |= {pooled[i]["program"] for i in records([s["reward"] for s in pooled])}
    chosen |= {p["program"] for tree in trees for p in tree["anytime"]}
    ordered = sorted(chosen)
    verdicts = await asyncio.gather(*(executor.arun(p, problem.hidden_tests) for p in ordered))
    hidden = {p: v.status == "passed" for p, v in zip(ordered, verdicts)}
    for tree in trees:
        for point in tree["anytime"]:
            point["hidden"] = hidden[point.pop("program")]
    plain = {}
    for name, samples in (("a", plain_a), ("b", plain_b)):
        plain[name] = [{"reward": s["reward"], "hidden": hidden.get(s["program"])} for s in samples]
    return {"id": problem.id, "family": problem.family, "plain": plain, "trees": dict(zip(TREES, trees))}


# --- reading a row at a budget --------------------------------------------------------------


def best_of_n_at(samples: list[dict[str, Any]], g: int) -> bool:
    """Whether the program chosen from the first g samples passes every hidden test."""
    prefix = samples[:g]
    if not prefix:
        return False
    at = records([s["reward"] for s in prefix])[-1]
    return bool(prefix[at]["hidden"])


def tree_at(tree: dict[str, Any], g: int) -> bool:
    points = [p for p in tree["anytime"] if p["generations"] <= g]
    return bool(points and points[-1]["hidden"])


def verified_at(row: dict[str, Any], method: str, g: int) -> bool:
    a, b = row["plain"]["a"], row["plain"]["b"]
    if method == "best_of_n_same_agent":
        return best_of_n_at(a, g)
    if method == "best_of_n_other_agent":
        return best_of_n_at(b, g)
    if method == "best_of_n_pooled":
        return best_of_n_at(interleave(a, b), g)
    return tree_at(row["trees"][method], g)


def generations_at(row: dict[str, Any], method: str, g: int) -> float:
    return float(min(g, row["trees"][method]["used"])) if method in TREES else float(g)


# --- the summary ------------------------------------------------------------------------------


def summarize(rows: list[dict[str, Any]], budgets: list[int], seeds: list[int]) -> dict[str, Any]:
    by_seed = defaultdict(list)
    for row in rows:
        by_seed[row["seed"]].append(row)
    methods: dict[str, Any] = {}
    per_seed: dict[str, Any] = {}
    for method in METHODS:
        methods[method], per_seed[method] = {}, {}
        for b in budgets:
            methods[method][str(b)] = {
                "verified": 100 * sum(verified_at(r, method, b) for r in rows) / len(rows),
                "generations": sum(generations_at(r, method, b) for r in rows) / len(rows),
            }
            per_seed[method][str(b)] = [100 * sum(verified_at(r, method, b) for r in by_seed[s]) / len(by_seed[s]) for s in seeds]
    problems = sorted({r["id"] for r in rows})
    rows_of = defaultdict(list)
    for row in rows:
        rows_of[row["id"]].append(row)
    diffs: dict[str, Any] = {}
    for name, (x, y) in DIFFS.items():
        diffs[name] = {}
        for b in budgets:
            per_problem = [sum(verified_at(r, x, b) - verified_at(r, y, b) for r in rows_of[p]) / len(rows_of[p]) for p in problems]
            interval = paired_bootstrap(per_problem).scaled(100)
            diffs[name][str(b)] = {"mean": interval.mean, "ci_low": interval.low, "ci_high": interval.high}
    top = max(budgets)
    trees = {name: [r["trees"][name] for r in rows] for name in TREES}
    spend = {}
    for name, ts in trees.items():
        kinds = sorted({k for t in ts for k in t["kinds"]})
        n = len(ts)
        solved = [t for t in ts if t["solved_by"]]
        spend[name] = {
            "generations": sum(t["used"] for t in ts) / n,
            "kinds": {k: sum(t["kinds"].get(k, 0) for t in ts) / n for k in kinds},
            "rollouts": sum(t["rollouts"] for t in ts) / n,
            "depth": sum(t["depth"] for t in ts) / n,
            "states": sum(t["size"] for t in ts) / n,
            "solved_at_root": 100 * sum(t["solved_by"] == "root" for t in ts) / n,
            "solved_by_tree": 100 * sum(t["solved_by"] == "tree" for t in ts) / n,
            "unsolved": 100 * sum(not t["solved_by"] for t in ts) / n,
            "winning_prefix_depth": dict(Counter(str(t["best_prefix_depth"]) for t in solved)),
            "best_program_by": dict(Counter(t["best_agent"] for t in solved)),
            "thoughts_of_solved_by": dict(Counter(a for t in solved for a in t["best_thought_agents"])),
            "solved_by_a_mixed_chain": 100 * sum(t["mixed"] for t in solved) / n,
        }
    return {
        "methods": methods,
        "diffs": diffs,
        "root_solved_share": spend["tree_2_agents"]["solved_at_root"],
        "per_seed": per_seed,
        "spend": spend,
        "curves": {m: [100 * sum(verified_at(r, m, g) for r in rows) / len(rows) for g in range(1, top + 1)] for m in METHODS},
        "problems": len(problems),
        "seeds": seeds,
        "budgets": budgets,
    }


def plot(summary: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    styles = {"tree_2_agents": "-", "tree_1_agent": "-", "best_of_n_pooled": "--", "best_of_n_same_agent": ":",
              "best_of_n_other_agent": ":"}
    for method, curve in summary["curves"].items():
        ax.plot(range(1, len(curve) + 1), curve, styles[method], label=method, linewidth=2 if "tree" in method else 1.5)
    for b in summary["budgets"]:
        ax.axvline(b, color="grey", linewidth=0.5)
    ax.set_xlabel("LLM generations spent per problem")
    ax.set_ylabel("hidden-verified, % of problems")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- running ------------------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def claim(out: Path, settings: dict[str, Any]) -> None:
    """Resume only rows made with the same settings (a mix would compare two setups)."""
    path = out / "settings.json"
    if path.exists():
        stored = json.loads(path.read_text())
        changed = sorted(k for k in settings if stored.get(k) != settings[k])
        if changed:
            raise SystemExit(f"{out} holds rows made with other {', '.join(changed)}: use another --out or delete it")
    else:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=2))


async def reseed(handle, seed: int) -> None:
    """Start an agent's sampling stream from `seed`: a seeded request sets the backend's global RNG
    (transformers' set_seed), which the unseeded requests after it continue from. Runs are not
    bit-reproducible (batch composition follows timing); seeds make them independent draws."""
    for actor in handle.actors:
        await agenerate(actor, ["# "], SamplingParams(n=1, temperature=1.0, max_new_tokens=1, seed=seed))


async def run_seed(seed, problems, handles, executor, search, budget, concurrency, sink, done) -> None:
    for index, handle in enumerate(handles):
        await reseed(handle, 1000 * seed + index)
    agents = [h.agent() for h in handles]
    searchers = {"tree_1_agent": MCTreeOfAgents(agents[:1], executor, search), "tree_2_agents": MCTreeOfAgents(agents, executor, search)}
    gate = asyncio.Semaphore(concurrency)
    todo = [p for p in problems if (seed, p.id) not in done]
    bar = tqdm(total=len(problems), initial=len(problems) - len(todo), desc=f"seed {seed}", unit="problem")

    async def one(problem):
        async with gate:
            row = await solve_problem(problem, agents, searchers, executor, budget)
        row["seed"] = seed
        with sink.open("a") as f:
            f.write(json.dumps(row) + "\n")
        bar.update(1)

    await asyncio.gather(*(one(p) for p in todo))
    bar.close()


def print_tables(summary: dict[str, Any], names: dict[str, str]) -> None:
    console = wide_console()
    table = Table(title=f"Hidden-verified % ({summary['problems']} problems x {len(summary['seeds'])} seeds; "
                        f"mean generations spent in brackets; spread over seeds after ±)")
    table.add_column("method")
    for b in summary["budgets"]:
        table.add_column(f"budget {b}", justify="right")
    for method in METHODS:
        cells = []
        for b in summary["budgets"]:
            m = summary["methods"][method][str(b)]
            seeds = summary["per_seed"][method][str(b)]
            spread = (max(seeds) - min(seeds)) / 2
            cells.append(f"{m['verified']:.1f} ± {spread:.1f} [{m['generations']:.1f}]")
        table.add_row(f"{method} ({names.get(method, '')})", *cells)
    console.print(table)
    diffs = Table(title="Differences, points: mean [paired bootstrap 95% interval over problems]")
    diffs.add_column("difference")
    for b in summary["budgets"]:
        diffs.add_column(f"budget {b}", justify="right")
    for name in DIFFS:
        diffs.add_row(name, *(f"{d['mean']:+.1f} [{d['ci_low']:+.1f}, {d['ci_high']:+.1f}]"
                              for d in (summary["diffs"][name][str(b)] for b in summary["budgets"])))
    console.print(diffs)
    spend = Table(title=f"How the trees spent their generations (means per problem, runs at budget {max(summary['budgets'])})")
    console.print("gens: generations spent; cont / prog / thought: of which continuations, programs, bare thoughts; root / "
                  "tree / unsolved: % of problems solved on public tests by a plain sample at the root, by a program written "
                  "from a thought chain, not at all; mixed: % solved by a chain whose thoughts and program came from two agents; "
                  "depth of win: thoughts in the winning program's prompt (problems)")
    cols = ("gens", "cont", "prog", "thought", "rollouts", "depth", "states", "root %", "tree %", "unsolved %", "mixed %",
            "depth of win", "best program by")
    spend.add_column("tree")
    for c in cols:
        spend.add_column(c, justify="right")
    for name, s in summary["spend"].items():
        spend.add_row(name, f"{s['generations']:.1f}", *(f"{s['kinds'].get(k, 0):.1f}" for k in ("continuation", "program", "thought")),
                      f"{s['rollouts']:.1f}", f"{s['depth']:.2f}", f"{s['states']:.1f}", f"{s['solved_at_root']:.1f}",
                      f"{s['solved_by_tree']:.1f}", f"{s['unsolved']:.1f}", f"{s['solved_by_a_mixed_chain']:.1f}",
                      ", ".join(f"{k}: {v}" for k, v in sorted(s["winning_prefix_depth"].items())),
                      ", ".join(f"{k} {v}" for k, v in sorted(s["best_program_by"].items())))
    console.print(spend)
    console.print(f"root_solved_share (2-agent tree solved by a plain sample at its root): {summary['root_solved_share']:.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "ray_config.yaml"))
    parser.add_argument("--teachers", default=str(TEACHERS), help="YAML whose `overlay` is merged over --config.")
    parser.add_argument("--suite-seed", type=int, default=11, help="Suite seed of the problems (training split).")
    parser.add_argument("--families", default=",".join(MULTI_PART_FAMILIES))
    parser.add_argument("--per-family", type=int, default=30, help="Training problems per family.")
    parser.add_argument("--seeds", default="0,1,2", help="Sampling seeds (independent runs of every method).")
    parser.add_argument("--budget", default="8,16,32", help="LLM generations per problem; the largest is run, all are read.")
    parser.add_argument("--concurrency", type=int, default=6, help="Problems in flight.")
    parser.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "boost_vs_sampling"))
    args = parser.parse_args()

    budgets = sorted(int(b) for b in args.budget.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    overlay = yaml.safe_load(Path(args.teachers).read_text())["overlay"] if args.teachers else {}
    cfg = load_config(args.config, overrides=overlay)
    if len(cfg.models.agents) < 2:
        raise SystemExit("two agents needed (models.agents of the config and the teachers overlay)")
    search = SearchConfig.model_validate({**cfg.stages.boost.search.model_dump(), "max_generations": max(budgets), "rollouts": None})
    families = args.families.split(",")
    suite = generate_suite(SynthConfig(seed=args.suite_seed, train_per_family=args.per_family, heldout_per_family=0,
                                       heldout_comp_per_family=0, families=families))
    problems = suite.train
    out = Path(args.out)
    settings = {"suite_seed": args.suite_seed, "families": families, "per_family": args.per_family, "budget": max(budgets),
                "search": search.model_dump(mode="json"),
                "agents": [a.model_dump(mode="json", exclude={"replicas", "resources", "batch_window_ms"}) for a in cfg.models.agents]}
    claim(out, settings)
    sink = out / "rows.jsonl"
    rows = read_rows(sink)
    done = {(r["seed"], r["id"]) for r in rows}
    if any((s, p.id) not in done for s in seeds for p in problems):
        init_ray(cfg.ray)
        handles = start_agents(cfg.models)
        executor = pool = make_pool(cfg.sandbox, cfg.resources.sandbox.ray_options())
        try:
            for seed in seeds:
                started = time.perf_counter()
                asyncio.run(run_seed(seed, problems, handles, executor, search, max(budgets), args.concurrency, sink, done))
                print(f"seed {seed}: {time.perf_counter() - started:.0f} s")
        finally:
            pool.shutdown()
        rows = read_rows(sink)
    ids = {p.id for p in problems}
    rows = [r for r in rows if r["seed"] in seeds and r["id"] in ids]
    summary = summarize(rows, budgets, seeds)
    names = {"best_of_n_same_agent": cfg.models.agents[0].name, "best_of_n_other_agent": cfg.models.agents[1].name,
             "best_of_n_pooled": " + ".join(a.name for a in cfg.models.agents[:2]), "tree_1_agent": cfg.models.agents[0].name,
             "tree_2_agents": " + ".join(a.name for a in cfg.models.agents[:2])}
    print_tables(summary, names)
    summary.update(agents=names, suite_seed=args.suite_seed, families=families, search=search.model_dump(mode="json"))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(summary, out / "anytime.png", f"{summary['problems']} training problems of {', '.join(families)} (suite seed "
         f"{args.suite_seed}), {len(seeds)} seeds; teachers {names['tree_2_agents']}")
    print(f"written: {out / 'summary.json'}, {out / 'anytime.png'}")


if __name__ == "__main__":
    main()
