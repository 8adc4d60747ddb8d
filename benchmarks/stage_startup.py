"""The main command's fixed costs per stage, each repeat in a fresh process, beside a main run's stage totals.

    python benchmarks/stage_startup.py --repeats 3

1. Models: the embedded default's tiny agents and student are built if missing (timed and reported
   apart: a build is paid once per recipe, not per run).
2. A main run: `bdc run --run-name startup-bench` on the embedded default (or `--run DIR`, a finished
   run of the same config). Its timings.json gives every stage's total and what each start-up
   cost inside the run; its artifacts (SFT rows, experts, hypernetwork) are what the probes start from.
3. `--repeats` probes, each a fresh `python benchmarks/stage_startup.py --probe` process (so Ray
   starts for real every time), paying every fixed cost of the stages through the functions and
   `phase`s the stages use, and nothing else:
     ray          Ray init, and the whole process from exec to a ready cluster
     data         the sandbox pool started (warm workers ready), one program run, stopped
     boost        the agents' models resolved (built or reused), the agent actors started with their
                  models loaded, then the sandbox pool
     disentangle  the SFT problems embedded (embedder load) and clustered into a scratch folder; the
                  student resolved; ONE expert run (the all-data run, 2 steps) from launch to first step
     customize    routing features; a Tune search of 1 trial and 1 step (Tune start -> first trial
                  running, the trial's base model + experts load)
     eval         the sandbox pool; every solver's load in a Ray task, as eval runs it (1 problem)
   The probe runs one expert run and one trial alone, where the main run contends (2 expert runs
   and 2 trials at once on 2 CPUs), so the main run's column shows the same phases contended.
4. A table per stage: each fixed cost's median over the repeats (min-max), the same phase in the
   main run (median over what paid it, and how many did), and the main run's stage total.

`--compare-eval-tasks N` instead measures one candidate change side by side: eval's generation as it
is (one Ray task per solver and split, each loading its solver) against one task per solver over
all splits (one load per solver), on the main run's artifacts, N alternated rounds after a warm-up
in one Ray session; the held-out completions of both are compared too.

Figures are whole-process and wall-clock: the load of the machine enters them (printed with them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support import ROOT  # first: the repository on the path, offline settings

RUN_NAME = "startup-bench"
EXEC_ENV = "BDC_PROBE_EXEC_AT"


# --- the probe: one fresh process paying every fixed cost once -----------------------------------


def probe(config: Path, run_dir: str, out: Path) -> None:
    """Each stage's modules are imported inside its block, where the stage imports them in `bdc run`."""
    exec_at = float(os.environ[EXEC_ENV])
    from bdc_ray import timing
    from bdc_ray.config import load_config
    from bdc_ray.ray_session import init_ray

    # the main run's own config: its suite, its run folder
    cfg = load_config(config, {"storage_path": str(Path(run_dir).parent), "run_name": Path(run_dir).name})
    scratch = Path(tempfile.mkdtemp(prefix="bdc-startup-probe-"))
    with timing.recording() as timings:
        with timing.stage("ray"):
            timing.record("process exec -> config read", time.time() - exec_at)
            with timing.phase("init (a new local cluster, or joining one)"):
                init_ray(cfg.ray)
            timing.record("process exec -> Ray ready (whole process)", time.time() - exec_at)
        with timing.stage("data"):
            from bdc_ray.sandbox.ray_pool import make_pool

            pool_once(cfg, make_pool)
        with timing.stage("boost"):
            probe_boost(cfg, make_pool)
        with timing.stage("disentangle"):
            probe_disentangle(cfg, scratch)
        with timing.stage("customize"):
            probe_customize(cfg, scratch)
        with timing.stage("eval"):
            pool_once(cfg, make_pool)
            probe_eval(cfg)
    out.write_text(json.dumps(timings.to_json()))
    shutil.rmtree(scratch, ignore_errors=True)


def pool_once(cfg, make_pool) -> None:
    """A stage's pool: started, one program run at once (the probe has nothing to overlap it with,
    so the run waits for all of the start-up), stopped."""
    from bdc_ray.problems.types import StdioTest

    pool = make_pool(cfg.sandbox, cfg.resources.sandbox.ray_options())
    try:
        pool.run_many([("print(1)", [StdioTest(input="", output="1\n")])], desc=None)
    finally:
        pool.shutdown()


def probe_boost(cfg, make_pool) -> None:
    import ray

    from bdc_ray.boost.stage import start_agents

    agents = start_agents(cfg.models)  # the stage's order: agents first, then the pool
    pool_once(cfg, make_pool)
    for handle in agents:
        for actor in handle.actors:
            ray.kill(actor)


def probe_disentangle(cfg, scratch: Path) -> None:
    from bdc_ray import timing
    from bdc_ray.artifacts.experts import ALL_DATA
    from bdc_ray.artifacts.sft import read_sft_rows
    from bdc_ray.disentangle import run_cluster_stage
    from bdc_ray.disentangle.experts import RunSpec, _train_one, fingerprint
    from bdc_ray.models import student_model

    layout, section = cfg.layout, cfg.stages.disentangle
    run_cluster_stage(layout.sft_file, str(scratch / "clusters"), section.cluster, progress=False)
    with timing.phase("student model built or reused"):
        base = section.experts.base_model or student_model(cfg.models)
    experts = section.experts.model_copy(update={"steps": 2, "checkpoint_every": 2})
    spec = RunSpec(ALL_DATA, read_sft_rows(layout.sft_file))
    _train_one(spec, fingerprint(spec, base, experts), base, experts, str(scratch / "experts"))


def probe_customize(cfg, scratch: Path) -> None:
    from bdc_ray import timing
    from bdc_ray.customize.features import default_embedder
    from bdc_ray.customize.stage import prepare
    from bdc_ray.customize.tune import run_tune

    custom = cfg.stages.customize
    one_trial = custom.model_copy(update={
        "train": custom.train.model_copy(update={"steps": 1, "eval_every": 1}),
        "search": custom.search.model_copy(update={"num_samples": 1}),
    })
    embed = default_embedder(custom.embedder or cfg.stages.disentangle.cluster.embedder,
                             cache_dir=str(scratch / "embeddings"))
    with timing.phase("training rows + routing features prepared (embedder load included)"):
        data = prepare(cfg.layout, one_trial, cfg.suite, embed)
    run_tune(data, one_trial, str(scratch / "tune"), str(scratch / "hypernet"))


def probe_eval(cfg) -> None:
    """Every solver's task at once, as eval submits them (one problem, a few tokens each)."""
    import ray

    from bdc_ray import timing
    from bdc_ray.heldout.solvers import generate_timed, solver_sources
    from bdc_ray.llm.base import SamplingParams

    evaluation = cfg.stages.eval
    sources = solver_sources(cfg.layout)
    problem = cfg.suite.read(evaluation.splits[0])[0]
    sampling = SamplingParams(n=1, temperature=0.0, max_new_tokens=8, seed=0)
    options = evaluation.resources.ray_options()
    task = ray.remote(generate_timed).options(**options)
    threads = max(1, int(options.get("num_cpus", 1)))
    pending = {kind: task.remote(kind, sources[kind], [problem.prompt], sampling, threads) for kind in evaluation.solvers}
    for kind, ref in pending.items():
        _, paid = ray.get(ref)
        timing.merge(paid, unit=kind)


# --- a candidate change, side by side: eval's solver tasks per split or per solver ----------------


def compare_eval_tasks(config: Path, run_dir: str, rounds: int, console) -> None:
    import ray

    from bdc_ray.config import load_config
    from bdc_ray.heldout.solvers import LOAD_PHASE, generate_timed, solver_sources
    from bdc_ray.llm.base import SamplingParams
    from bdc_ray.ray_session import init_ray
    from bdc_ray.timing import Timings

    cfg = load_config(config, {"storage_path": str(Path(run_dir).parent), "run_name": Path(run_dir).name})
    section = cfg.stages.eval
    sources = solver_sources(cfg.layout)
    splits = {name: [p.prompt for p in cfg.suite.read(name)] for name in section.splits}
    sampling = SamplingParams(n=section.samples, temperature=section.temperature,
                              max_new_tokens=section.max_new_tokens, seed=0)
    options = section.resources.ray_options()
    threads = max(1, int(options.get("num_cpus", 1)))
    init_ray(cfg.ray)
    task = ray.remote(generate_timed).options(**options)

    def per_split() -> dict:
        refs = {(kind, split): task.remote(kind, sources[kind], prompts, sampling, threads)
                for kind in section.solvers for split, prompts in splits.items()}
        return {key: ray.get(ref) for key, ref in refs.items()}

    def per_solver() -> dict:
        refs = {kind: task.remote(kind, sources[kind], [p for prompts in splits.values() for p in prompts], sampling,
                                  threads) for kind in section.solvers}
        out = {}
        for kind, ref in refs.items():
            texts, paid = ray.get(ref)
            start = 0
            for split, prompts in splits.items():
                out[(kind, split)] = (texts[start:start + len(prompts)], paid if start == 0 else {"stages": {}})
                start += len(prompts)
        return out

    variants = {"per (solver, split): as eval runs": per_split, "per solver, all splits: one load each": per_solver}
    console.print("warm-up: every solver once on one problem, in as many task workers as run at once")
    ray.get([task.remote(kind, sources[kind], [next(iter(splits.values()))[0]], sampling, threads)
             for kind in section.solvers for _ in splits])
    walls: dict[str, list[float]] = {name: [] for name in variants}
    loads: dict[str, list[float]] = {name: [] for name in variants}
    texts: dict[str, dict] = {}
    for round_no in range(rounds):
        order = list(variants) if round_no % 2 == 0 else list(reversed(variants))
        for name in order:
            started = time.perf_counter()
            got = variants[name]()
            walls[name].append(time.perf_counter() - started)
            paid = Timings()
            for _, (_, phases) in got.items():
                paid.merge(phases)
            loads[name].append(sum(p.seconds for p in paid.phases if p.name == LOAD_PHASE))
            texts[name] = {key: value[0] for key, value in got.items()}
            console.print(f"round {round_no + 1}/{rounds}: {name}: {walls[name][-1]:.1f} s, loads {loads[name][-1]:.2f} s, "
                          f"load average {os.getloadavg()[0]:.1f}")
    first, second = (texts[name] for name in variants)
    pairs = [(a, b) for key in first for a, b in zip(first[key], second[key], strict=True)]
    differ = sum(a != b for a, b in pairs)
    current = list(variants)[0]
    print("\n| eval generation (held-out splits, all solvers) | wall s (median) | runs | this / current (paired) "
          "| solver loads s (median) |")
    print("|---|---|---|---|---|")
    for name in variants:
        ratios = [w / c for w, c in zip(walls[name], walls[current])]
        print(f"| {name} | {statistics.median(walls[name]):.1f} | {' / '.join(f'{w:.1f}' for w in walls[name])} | "
              f"{statistics.median(ratios):.2f} | {statistics.median(loads[name]):.2f} |")
    print(f"\ncompletions that differ between the two: {differ} of {len(pairs)} (the last round's); {rounds} "
          f"alternated rounds after a warm-up; load average now {os.getloadavg()}")


# --- the parent: models, a main run, the repeats, the table ---------------------------------------


def build_models(config: Path) -> dict[str, float]:
    """Build (or find) every tiny model of the config in this process; seconds per model."""
    from bdc_ray.config import load_config
    from bdc_ray.tiny import build_tiny
    from bdc_ray.tiny.build import build_dir

    cfg = load_config(config)
    recipes = {a.name: a.tiny for a in cfg.models.agents if a.tiny is not None}
    if cfg.models.student is not None and cfg.models.student.tiny is not None:
        recipes["student"] = cfg.models.student.tiny
    built = {}
    for name, recipe in recipes.items():
        if (build_dir(recipe, cfg.models.build_root) / "bdc_tiny.json").is_file():
            continue
        print(f"building tiny model {name} (missing from {cfg.models.build_root}) ...", flush=True)
        started = time.perf_counter()
        build_tiny(recipe, cfg.models.build_root, threads=1, progress=True)
        built[name] = time.perf_counter() - started
    return built


def main_run(config: Path, run: str | None) -> tuple[str, float | None]:
    """(the run folder, seconds when this call ran `bdc run`, else None)."""
    from bdc_ray.config import load_config

    if run is not None:
        return str(Path(run).resolve()), None
    cfg = load_config(config, {"run_name": RUN_NAME})
    timings = Path(cfg.layout.timings_file)
    if timings.is_file() and "report" in json.loads(timings.read_text())["stages"]:
        return cfg.run_dir, None
    print(f"main run: bdc run --run-name {RUN_NAME} (log: {cfg.run_dir}.log) ...", flush=True)
    Path(cfg.run_dir).parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(f"{cfg.run_dir}.log", "w") as log:
        done = subprocess.run([sys.executable, "-m", "bdc_ray.cli", "run", "--config", str(config), "--run-name",
                               RUN_NAME], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"the main run failed ({done.returncode}): see {cfg.run_dir}.log")
    return cfg.run_dir, time.perf_counter() - started


def run_probe(config: Path, run_dir: str, out: Path, log: Path) -> float:
    env = {**os.environ, EXEC_ENV: repr(time.time())}
    started = time.perf_counter()
    with log.open("w") as f:
        done = subprocess.run([sys.executable, __file__, "--probe", "--config", str(config), "--run", run_dir,
                               "--out", str(out)], cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"probe failed ({done.returncode}): see {log}")
    return time.perf_counter() - started


def medians(runs: list[dict]) -> dict[tuple[str, str], list[float]]:
    """(stage, phase) -> one figure per probe (the median over units when a probe paid it several times)."""
    from bdc_ray.timing import Timings

    found: dict[tuple[str, str], list[float]] = {}
    for data in runs:
        for row in Timings.from_json(data).rows():
            if row["phase"] is not None:
                found.setdefault((row["stage"], row["phase"]), []).append(row["median_s"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "ray_config.yaml")
    parser.add_argument("--repeats", type=int, default=3, help="fresh probe processes")
    parser.add_argument("--run", help="a finished main run's folder (default: run or reuse runs/startup-bench)")
    parser.add_argument("--compare-eval-tasks", type=int, metavar="ROUNDS",
                        help="instead: eval's tasks per (solver, split) vs per solver, ROUNDS alternated rounds")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.config.resolve(), args.run, args.out)
        return

    from rich.console import Console
    from rich.table import Table

    from bdc_ray.timing import Timings

    console = Console(width=180)
    load_before = os.getloadavg()
    built = build_models(args.config)
    for name, seconds in built.items():
        console.print(f"built tiny model {name} in {seconds:.0f} s (once per recipe; not a start-up)")
    run_dir, run_s = main_run(args.config, args.run)
    if run_s is not None:
        console.print(f"main run finished in {run_s:.0f} s: {run_dir}")
    if args.compare_eval_tasks:
        compare_eval_tasks(args.config, run_dir, args.compare_eval_tasks, console)
        return
    main = Timings.from_json(json.loads(Path(run_dir, "timings.json").read_text()))
    main_rows = {(r["stage"], r["phase"]): r for r in main.rows()}

    work = Path(tempfile.mkdtemp(prefix="bdc-stage-startup-"))
    runs, walls = [], []
    for i in range(args.repeats):
        out = work / f"probe-{i}.json"
        wall = run_probe(args.config, run_dir, out, work / f"probe-{i}.log")
        walls.append(wall)
        runs.append(json.loads(out.read_text()))
        console.print(f"probe {i + 1}/{args.repeats}: {wall:.0f} s whole process (log {work / f'probe-{i}.log'}), "
                      f"load average {os.getloadavg()[0]:.1f}")
    load_after = os.getloadavg()

    probes = medians(runs)
    stages = list(dict.fromkeys([s for s, _ in probes] + main.stages()))
    title = (f"stage start-ups: probe = median of {args.repeats} fresh processes (min-max); main run = {run_dir} "
             f"(median over what paid it); load average {load_before[0]:.1f} -> {load_after[0]:.1f} on "
             f"{os.cpu_count()} CPUs")
    table = Table(title=title)
    columns = ("stage", "fixed cost", "probe s", "min-max", "main run s", "paid in run")
    for c in columns:
        table.add_column(c, justify="left" if c in ("stage", "fixed cost") else "right")
    lines = []
    for stage in stages:
        names = list(dict.fromkeys([p for s, p in probes if s == stage] +
                                   [p for s, p in main_rows if s == stage and p is not None]))
        for name in names:
            got = probes.get((stage, name))
            ran = main_rows.get((stage, name))
            row = (stage, name,
                   f"{statistics.median(got):.2f}" if got else "",
                   f"{min(got):.2f}-{max(got):.2f}" if got else "",
                   f"{ran['median_s']:.2f}" if ran else "",
                   str(ran["n"]) if ran else "")
            table.add_row(*row)
            lines.append(row)
        total = main.totals.get(stage)
        if total is not None:
            row = (stage, "whole stage (main run)", "", "", f"{total:.1f}", "")
            table.add_row(*row, end_section=True)
            lines.append(row)
    console.print(table)
    console.print(f"probe whole process: median {statistics.median(walls):.0f} s ({', '.join(f'{w:.0f}' for w in walls)})")
    print("\nMarkdown:\n")
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in lines:
        print("| " + " | ".join(row) + " |")
    print(f"\nload average before {load_before}, after {load_after}; probes' files in {work}")


if __name__ == "__main__":
    main()
