"""Boost vs best-of-N sampling at EQUAL LLM generations per problem, in one run.

On synthetic TRAINING problems (what Boost searches; no held-out problem is touched), the share
of problems whose chosen program passes every HIDDEN test, for
  (a) best-of-N sampling with public-test filtering, one agent;
  (b) MC-Tree-of-Agents with that one agent;
  (c) MC-Tree-of-Agents with two agents;
each allowed the same number of generations (samples) per problem, counted the same way (one
thought, program, continuation or refinement each). Agents, sandbox and problems are shared by the
three methods; the agents are `models.agents` of the config. A second table says how each tree
spent its generations; the trees' rows "read at b" come from the largest budget's run through its
anytime list (the chosen program after b generations), next to the run made at budget b.

    .venv/bin/python benchmarks/boost_vs_sampling.py --config ray_config.yaml --per-family 20 --budget 8,16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path

from support import ROOT  # first: the repository on the path

from rich.table import Table  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from bdc_ray.boost.search import MCTreeOfAgents  # noqa: E402
from bdc_ray.boost.stage import start_agents  # noqa: E402
from bdc_ray.config import load_config  # noqa: E402
from bdc_ray.console import wide_console  # noqa: E402
from bdc_ray.problems.synth import FAMILIES, SynthConfig, generate_suite  # noqa: E402
from bdc_ray.ray_session import init_ray  # noqa: E402
from bdc_ray.sandbox.ray_pool import make_pool  # noqa: E402


async def best_of_n(agent, executor, problem, budget: int):
    programs = await agent.write_code(problem.public_view(), [], budget)
    results = await asyncio.gather(*(executor.arun(p, problem.public_tests) for p in programs))
    best = max(range(len(programs)), key=lambda i: results[i].pass_rate)  # first of the best
    return programs[best], results[best].pass_rate, budget, len(programs), None


async def tree(searcher, problem):
    result = await searcher.search(problem.public_view())
    return result.best_program, result.best_reward, sum(result.llm_generations.values()), sum(result.sandbox_runs.values()), result


async def run_method(name, solve, problems, executor, concurrency):
    gate = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(problems), desc=name, unit="problem")
    rows = []

    async def one(problem):
        async with gate:
            program, public, spent, programs, result = await solve(problem)
            hidden = await executor.arun(program, problem.hidden_tests)
            row = {"id": problem.id, "family": problem.family, "public": public, "hidden_all": hidden.status == "passed",
                   "generations": spent, "programs": programs}
            if result is not None:  # a tree: what it spent its generations on, and its anytime programs' hidden results
                anytime = [{**point.model_dump(), "hidden_all": (await executor.arun(point.program, problem.hidden_tests)).status == "passed"}
                           for point in result.anytime]
                row.update(kinds=result.generations_by_kind, solved_by=result.solved_by, rollouts=result.rollouts,
                           depth=result.tree_depth, tree_size=result.tree_size, best_agent=result.best_agent,
                           best_thought_agents=result.best_thought_agents, anytime=anytime)
        bar.update(1)
        rows.append(row)

    started = time.perf_counter()
    await asyncio.gather(*(one(p) for p in problems))
    bar.close()
    return rows, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "ray_config.yaml"))
    parser.add_argument("--per-family", type=int, default=6, help="Training problems per family.")
    parser.add_argument("--budget", default="16", help="LLM generations per problem, every method; several: 8,16.")
    parser.add_argument("--seed", type=int, default=11, help="Suite seed (training split only).")
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "boost_vs_sampling.json"))
    args = parser.parse_args()

    cfg = load_config(args.config)
    if len(cfg.models.agents) < 2:
        raise SystemExit("the config needs two agents in models.agents")
    init_ray(cfg.ray)
    suite = generate_suite(SynthConfig(seed=args.seed, train_per_family=args.per_family, heldout_per_family=0, heldout_comp_per_family=0))
    problems = suite.train
    handles = start_agents(cfg.models)
    executor = pool = make_pool(cfg.sandbox, cfg.resources.sandbox.ray_options())
    first, second = handles[0].agent(), handles[1].agent()
    budgets = [int(b) for b in str(args.budget).split(",")]
    results = {}
    try:
        for budget in budgets:
            search = SearchConfig.model_validate({**cfg.stages.boost.search.model_dump(), "max_generations": budget, "rollouts": None})
            one_agent = MCTreeOfAgents([first], executor, search)
            two_agents = MCTreeOfAgents([first, second], executor, search)
            methods = {
                f"(a) best-of-{budget}, {first.name}": lambda p, b=budget: best_of_n(first, executor, p, b),
                f"(b) tree, {first.name}": lambda p, s=one_agent: tree(s, p),
                f"(c) tree, {first.name} + {second.name}": lambda p, s=two_agents: tree(s, p),
            }
            for name, solve in methods.items():
                results[(budget, name)] = asyncio.run(run_method(f"{name} @{budget}", solve, problems, executor, args.concurrency))
    finally:
        pool.shutdown()

    table = Table(title=f"Boost vs sampling: {len(problems)} training problems (suite seed {args.seed}), equal generation budgets")
    for col in ("budget", "method", "hidden-verified", "public solved", "mean generations", "mean programs run", "seconds", *FAMILIES):
        table.add_column(col, justify="left" if col == "method" else "right")
    summary = []
    for (budget, name), (rows, seconds) in results.items():
        share = sum(r["hidden_all"] for r in rows) / len(rows)
        public = sum(r["public"] >= 1.0 for r in rows) / len(rows)
        gens = sum(r["generations"] for r in rows) / len(rows)
        progs = sum(r["programs"] for r in rows) / len(rows)
        fam = {f: [r["hidden_all"] for r in rows if r["family"] == f] for f in FAMILIES}
        per_family = {f: (sum(v) / len(v) if v else 0.0) for f, v in fam.items()}
        summary.append({"budget": budget, "method": name, "hidden_verified": share, "public_solved": public,
                        "mean_generations": gens, "mean_programs": progs, "seconds": seconds, "per_family": per_family})
        table.add_row(str(budget), name, f"{100 * share:.1f}%", f"{100 * public:.1f}%", f"{gens:.1f}", f"{progs:.1f}",
                      f"{seconds:.0f}", *(f"{100 * per_family[f]:.0f}" for f in FAMILIES))
    top = max(budgets)
    for (budget, name), (rows, _) in list(results.items()):
        if budget != top or "tree" not in name:
            continue
        for b in sorted(budgets)[:-1]:  # the largest budget's trees, read at each smaller budget through their anytime lists
            chosen = [([p for p in r["anytime"] if p["generations"] <= b] or [None])[-1] for r in rows]
            share = sum(bool(c and c["hidden_all"]) for c in chosen) / len(rows)
            public = sum(bool(c and c["reward"] >= 1.0) for c in chosen) / len(rows)
            summary.append({"budget": b, "method": f"{name}, read at {b} from its {top} run", "hidden_verified": share,
                            "public_solved": public})
            table.add_row(str(b), f"{name} (anytime: the {top} run read at {b})", f"{100 * share:.1f}%", f"{100 * public:.1f}%",
                          "", "", "", *("" for _ in FAMILIES))
    wide_console().print(table)

    spend = Table(title="How the trees spent their generations (means per problem; solved = public tests)")
    kinds = ("continuation", "thought", "program", "refine", "merge")
    for col in ("budget", "method", *kinds, "rollouts", "depth", "states", "solved at root", "solved by tree", "best program by",
                "thoughts of verified by"):
        spend.add_column(col, justify="left" if col in ("method", "best program by", "thoughts of verified by") else "right")
    for (budget, name), (rows, _) in results.items():
        if "tree" not in name:
            continue
        n = len(rows)
        mean = lambda f: sum(f(r) for r in rows) / n  # noqa: E731
        wins = Counter(r["best_agent"] for r in rows if r["hidden_all"] and r["best_agent"])
        thinkers = Counter(a for r in rows if r["hidden_all"] for a in r["best_thought_agents"])
        spend.add_row(str(budget), name, *(f"{mean(lambda r, k=k: r['kinds'].get(k, 0)):.1f}" for k in kinds),
                      f"{mean(lambda r: r['rollouts']):.1f}", f"{mean(lambda r: r['depth']):.2f}", f"{mean(lambda r: r['tree_size']):.1f}",
                      f"{100 * mean(lambda r: r['solved_by'] == 'root'):.1f}%", f"{100 * mean(lambda r: r['solved_by'] == 'tree'):.1f}%",
                      ", ".join(f"{a} {c}" for a, c in sorted(wins.items())), ", ".join(f"{a} {c}" for a, c in sorted(thinkers.items())))
        for s_ in summary:
            if s_["budget"] == budget and s_["method"] == name:
                s_.update(kinds={k: mean(lambda r, k=k: r["kinds"].get(k, 0)) for k in kinds},
                          mean_rollouts=mean(lambda r: r["rollouts"]), mean_depth=mean(lambda r: r["depth"]),
                          solved_at_root=mean(lambda r: r["solved_by"] == "root"), solved_by_tree=mean(lambda r: r["solved_by"] == "tree"),
                          best_program_by=dict(wins), verified_thoughts_by=dict(thinkers))
    wide_console().print(spend)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    search_cfg = cfg.stages.boost.search.model_dump()
    per_problem = {f"{budget}|{name}": rows for (budget, name), (rows, _) in results.items()}
    Path(args.out).write_text(json.dumps({"budgets": budgets, "problems": len(problems), "search": search_cfg, "results": summary,
                                          "per_problem": per_problem}, indent=2))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
