"""BDC's effect, measured: does the student learn from the teachers' trees, and does routing beat one adapter?

Per seed, the whole pipeline runs in its own run folder on the same suite (`--suite-seed`):
Boost with the teachers over the training problems, clusters, one LoRA expert per cluster plus the
all-data baseline on the student, the hypernetwork through Ray Tune. The seed changes everything
a run draws (the teachers' samples, the experts' and hypernetwork's initialisation and batch
order, the Tune search); the problems stay the same, so solvers and seeds pair problem by problem.
Then every way of using the experts (benchmarks/solvers.py: base student, all_data, each expert
alone, uniform mix, peft ties / linear merges, hard_routing to the nearest centroid, the
hypernetwork), and the teachers for reference, write one greedy program per held-out problem
(`heldout`, and the compositional `heldout_comp` split: operations in orders never trained), judged
on all tests in the sandbox.

Reported: pass@1 per solver and split (mean over seeds, and each seed's), the differences the
issue names with a paired bootstrap 95% interval over problems (per-problem differences averaged
over seeds; each seed's own interval beside it), and per cluster of each seed: its training rows,
its top family, and the expert vs the all-data LoRA on the held-out problems routed to it.

    .venv/bin/python benchmarks/learning.py --suite-seed 1 --seeds 0,1,2 --out runs/benchmarks/learning

`--round2` adds a second round per seed (beyond the paper): round one's customized student is
deployed on Ray Serve and joins the teachers, as an OpenAI-compatible agent, for one more Boost
pass over the training problems round one left unverified; experts and hypernetwork are trained
again on both rounds' rows, and round two's solvers are compared with round one's, paired.

The setting (teachers, student, how many problems Boost searches, the experts' schedule) is
`benchmarks/learning.yaml`, merged over --config. Resumable: every stage skips what it finished,
and each solver's verdicts are kept per seed and split (`DIR/seed-S/learning/`), reused only
while the experts and hypernetwork they were measured on are unchanged. Writes DIR/summary.json
and DIR/learning.png.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

from support import ROOT  # first: the repository on the path, offline settings
from solvers import SolverSet  # noqa: E402

from rich.table import Table  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from bdc_ray import storage  # noqa: E402
from bdc_ray.config import BDCConfig, load_config  # noqa: E402
from bdc_ray.console import wide_console  # noqa: E402
from bdc_ray.eval.bootstrap import paired_bootstrap  # noqa: E402
from bdc_ray.eval.evaluate import Sample, evaluate_samples  # noqa: E402
from bdc_ray.pipeline import run_pipeline  # noqa: E402

SETTING = ROOT / "benchmarks" / "learning.yaml"
SPLITS = ("heldout", "heldout_comp")
DIFFS = {
    "all_data-base": ("all_data", "base"),
    "hard_routing-all_data": ("hard_routing", "all_data"),
    "hypernetwork-hard_routing": ("hypernetwork", "hard_routing"),
    "hypernetwork-all_data": ("hypernetwork", "all_data"),
    "hypernetwork-base": ("hypernetwork", "base"),
}
"""The issue's differences, in the order of its expected chain (all_data > base, hard routing >
all_data, hypernetwork >= hard routing), then what the customized solver adds overall."""

console = wide_console()


# --- one seed ------------------------------------------------------------------------------


def seed_config(args, seed: int, setting: dict[str, Any], run_name: str | None = None,
                extra: dict[str, Any] | None = None) -> BDCConfig:
    """The config of one seed's run: the setting over --config, the suite of --suite-seed with the
    held-out sizes asked for, and the seed in every stage that draws (`extra` merged over all)."""
    from bdc_ray.config import deep_merge

    overrides = {
        **setting,
        "run_name": run_name or f"seed-{seed}",
        "storage_path": str(Path(args.out).resolve()),
    }
    merged = deep_merge(json.loads(json.dumps(overrides)), extra or {})
    synth = merged.setdefault("data", {}).setdefault("synthetic", {})
    synth.update(seed=args.suite_seed, heldout_per_family=args.heldout_per_family,
                 heldout_comp_per_family=args.comp_per_family)
    stages = merged.setdefault("stages", {})
    stages.setdefault("disentangle", {}).setdefault("experts", {})["seed"] = seed
    customize = stages.setdefault("customize", {})
    customize.setdefault("train", {})["seed"] = seed
    customize.setdefault("search", {})["seed"] = seed
    return load_config(args.config, overrides=merged)


def weights_key(cfg: BDCConfig, solvers: SolverSet, problems) -> str:
    """What a stored verdict depends on: the experts (manifest digest), the hypernetwork, the problems."""
    from bdc_ray.artifacts.hypernet import hypernet_identity

    payload = [solvers.manifest.digest(), hypernet_identity(cfg.layout.hypernet_dir).digest,
               [p.id for p in problems], solvers.greedy.model_dump(mode="json")]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def judge(problems, programs: list[str], sandbox) -> dict[str, bool]:
    samples = [Sample(task_id=p.id, completion=c) for p, c in zip(problems, programs, strict=True)]
    records, errors = evaluate_samples(problems, samples, sandbox.run_many, tests="all")
    if errors:
        raise SystemExit(f"scoring lost samples: {errors[:3]}")
    return {p.id: r["status"] == "passed" for p, r in zip(problems, records, strict=True)}


def teacher_programs(cfg: BDCConfig, statements: list[str], max_new_tokens: int) -> dict[str, list[str]]:
    """Each teacher's greedy programs, for the strength of every model on the same problems."""
    from bdc_ray.llm.base import SamplingParams
    from bdc_ray.llm.hf_backend import TransformersLLM
    from bdc_ray.models import resolve_backends
    from bdc_ray.problems.prompt_format import prompt_text

    specs = resolve_backends(cfg.models.agents, cfg.models.build_root)
    out = {}
    for agent in cfg.models.agents:
        llm = TransformersLLM(specs[agent.name].resolved().path, device="cpu", threads=1, max_batch_size=16)
        texts = llm.generate([prompt_text(s) for s in statements], SamplingParams(max_new_tokens=max_new_tokens))
        out[f"teacher:{agent.name}"] = [t[0] for t in texts]
    return out


def measure_seed(cfg: BDCConfig, args, teachers: bool = True) -> dict[str, dict[str, dict[str, bool]]]:
    """{split: {solver: {problem id: passed}}} for one seed's run folder (stored verdicts reused);
    `teachers`: the teachers' own programs too (once per seed is enough: they do not change)."""
    from bdc_ray.sandbox import Sandbox

    layout = cfg.layout
    out = Path(layout.root) / "learning"
    out.mkdir(parents=True, exist_ok=True)
    solvers = SolverSet(layout, out / "merged", threads=1, max_new_tokens=args.max_new_tokens)
    verdicts: dict[str, dict[str, dict[str, bool]]] = {}
    with Sandbox(workers=2) as sandbox:
        for split in SPLITS:
            problems = cfg.suite.read(split)
            statements = [p.prompt for p in problems]
            key = weights_key(cfg, solvers, problems)
            verdicts[split] = {}
            todo = []
            for name in [*solvers.names, *(f"teacher:{a.name}" for a in cfg.models.agents if teachers)]:
                path = out / split / f"{name.replace(':', '-')}.json"
                stored = json.loads(path.read_text()) if path.exists() else None
                if stored and stored.get("key") == (key if not name.startswith("teacher:") else "teachers"):
                    verdicts[split][name] = stored["passed"]
                else:
                    todo.append((name, path))
            teachers = [t for t in todo if t[0].startswith("teacher:")]
            if teachers:
                programs = teacher_programs(cfg, statements, args.max_new_tokens)
                for name, path in teachers:
                    verdicts[split][name] = judge(problems, programs[name], sandbox)
                    storage.write_json_atomic(str(path), {"key": "teachers", "passed": verdicts[split][name]})
            for name, path in tqdm([t for t in todo if not t[0].startswith("teacher:")],
                                   desc=f"{layout.root.rsplit('/', 1)[-1]} {split}", unit="solver"):
                verdicts[split][name] = judge(problems, solvers.generate(name, statements), sandbox)
                storage.write_json_atomic(str(path), {"key": key, "passed": verdicts[split][name]})
            verdicts[split]["_routed_to"] = dict(zip((p.id for p in problems),
                                                     (solvers.experts[e] for e in solvers.solver.router.nearest_experts(statements))))
            verdicts[split]["_family"] = {p.id: p.family for p in problems}
    return verdicts


def cluster_table(cfg: BDCConfig, verdicts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per expert: its training rows and top family, and on the held-out problems routed to it the
    base, the all-data LoRA and the expert itself (where one adapter for everything loses to one per type)."""
    from bdc_ray.artifacts.clustering import load_clustering
    from bdc_ray.artifacts.experts import load_manifest
    from bdc_ray.artifacts.sft import read_sft_rows

    manifest = load_manifest(cfg.layout.experts_dir)
    clustering = load_clustering(cfg.layout.clusters_dir)
    family_of = {r.problem_id: r.family for r in read_sft_rows(cfg.layout.sft_file)}
    held = verdicts["heldout"]
    rows = []
    for expert in manifest.experts:
        ids = [i for i, label in zip(clustering.ids, clustering.labels.tolist()) if label == expert.cluster]
        families = Counter(family_of.get(i) for i in ids)
        top, count = families.most_common(1)[0] if families else ("-", 0)
        routed = [p for p, e in held["_routed_to"].items() if e == expert.name]

        def rate(solver: str) -> float | None:
            return 100 * sum(held[solver][p] for p in routed) / len(routed) if routed else None

        rows.append({"expert": expert.name, "rows": expert.size, "top_family": top,
                     "top_share": round(100 * count / max(1, len(ids)), 1), "heldout_routed": len(routed),
                     "base": rate("base"), "all_data": rate("all_data"), "expert_pass": rate(expert.name),
                     "validation_loss": expert.validation_loss, "best_step": expert.best_step})
    return rows


def round_two(cfg: BDCConfig, args, seed: int, setting: dict[str, Any]) -> BDCConfig:
    """Beyond the paper: round one's customized student, served on Ray Serve and reached through
    its OpenAI-compatible API like any hosted model, joins the teachers for one more Boost pass
    over the training problems round one left unverified; the experts and the hypernetwork are
    then trained again on both rounds' rows (a run folder of its own, `seed-S-round2`)."""
    from ray import serve
    from transformers import AutoConfig

    from bdc_ray.artifacts.experts import load_manifest
    from bdc_ray.artifacts.sft import read_sft_rows, write_sft_rows
    from bdc_ray.artifacts.traces import read_traces
    from bdc_ray.llm.hf_backend import config_context
    from bdc_ray.problems.loaders import write_problems_jsonl
    from bdc_ray.serve import bind, resolve_app_args, start_app
    from support import free_port

    name = f"seed-{seed}-round2"
    folder = Path(args.out).resolve() / name
    failed = {t.problem_id for t in read_traces(cfg.layout.traces_dir) if not t.hidden_passed_all}
    problems_file = folder / "unverified.jsonl"
    write_problems_jsonl(problems_file, [p for p in cfg.suite.read("train") if p.id in failed])
    # Small requests: the teachers, the served student and the sandbox share the 2-CPU local cluster.
    small = {"resources": cfg.serve.resources.model_copy(update={"num_cpus": 0.25}),
             "autoscaling": cfg.serve.autoscaling.model_copy(update={"min_replicas": 1, "max_replicas": 1})}
    settings = bind(cfg.serve.model_copy(update=small), port=free_port())
    url = start_app(resolve_app_args(cfg.layout, settings))
    console.print(f"{name}: round one's customized student serving at {url}; {len(failed)} unverified problems")
    # The server refuses a prompt whose answer could overrun its context (as vLLM does), so the
    # client cuts prompts and lowers max_tokens itself, with the served base model's tokenizer.
    base = load_manifest(cfg.layout.experts_dir).base_model
    context = config_context(AutoConfig.from_pretrained(base))
    student = {"name": "student", "style": "completion", "resources": {"num_cpus": 0.1},
               "model": {"backend": "openai", "path": settings.model_name, "base_url": f"{url}/v1", "chat": False,
                         "max_concurrency": 8, "context": context, "tokenizer": base}}
    teachers = [{**a.model_dump(mode="json", exclude_none=True), "resources": {"num_cpus": 0.5}}
                for a in cfg.models.agents]
    boost = {"models": {"agents": [*teachers, student]},
             "stages": {"boost": {"problems": str(problems_file), "max_problems": None}}}
    try:
        run_pipeline(seed_config(args, seed, setting, name, boost), console, only=["boost"])
    finally:
        serve.delete(settings.app_name)
    both = folder / "sft-both-rounds.jsonl"
    rows = read_sft_rows(cfg.layout.sft_file) + read_sft_rows(str(folder / "boost" / "sft.jsonl"))
    write_sft_rows(str(both), rows)
    later = {"stages": {"disentangle": {"source": str(both)}, "customize": {"source": str(both)}}}
    cfg2 = seed_config(args, seed, setting, name, later)
    run_pipeline(cfg2, console, only=["disentangle", "customize"])
    return cfg2


# --- the summary ----------------------------------------------------------------------------------


def summarize(per_seed: dict[int, dict[str, dict[str, Any]]], seeds: list[int]) -> dict[str, Any]:
    first = per_seed[seeds[0]]
    common = {s: set.intersection(*(set(per_seed[x][s]) for x in seeds)) for s in SPLITS}
    solvers = sorted((n for n in common["heldout"] if not n.startswith("_")), key=_order)

    def pct(seed: int, split: str, solver: str) -> float:
        v = per_seed[seed][split][solver]
        return 100 * sum(v.values()) / len(v)

    out: dict[str, Any] = {"solvers": {}, "diffs": {}, "diffs_heldout_comp": {}, "diffs_per_seed": {}}
    for solver in solvers:
        entry = {"per_seed": [pct(s, "heldout", solver) for s in seeds],
                 "per_seed_comp": [pct(s, "heldout_comp", solver) for s in seeds if solver in per_seed[s]["heldout_comp"]]}
        entry["heldout"] = sum(entry["per_seed"]) / len(seeds)
        entry["heldout_comp"] = sum(entry["per_seed_comp"]) / max(1, len(entry["per_seed_comp"]))
        out["solvers"][solver] = entry
    for name, (a, b) in DIFFS.items():
        for split, key in (("heldout", "diffs"), ("heldout_comp", "diffs_heldout_comp")):
            problems = sorted(first[split][a])
            per_problem = [sum(per_seed[s][split][a][p] - per_seed[s][split][b][p] for s in seeds) / len(seeds)
                           for p in problems]
            interval = paired_bootstrap(per_problem).scaled(100)
            out[key][name] = {"mean": interval.mean, "ci_low": interval.low, "ci_high": interval.high}
        out["diffs_per_seed"][name] = []
        for s in seeds:
            v = per_seed[s]["heldout"]
            interval = paired_bootstrap([v[a][p] - v[b][p] for p in sorted(v[a])]).scaled(100)
            out["diffs_per_seed"][name].append({"seed": s, "mean": interval.mean, "ci_low": interval.low,
                                                "ci_high": interval.high})
    out["problems"] = {split: len(first[split]["base"]) for split in SPLITS}
    out["seeds"] = seeds
    return out


ROUND_TWO = ("all_data", "hard_routing", "hypernetwork")
"""The solvers compared across rounds: what round two's extra rows change in each."""


def round_two_summary(first: dict[int, dict[str, Any]], second: dict[int, dict[str, Any]], seeds: list[int]) -> dict:
    """Round two's solvers (pass@1 %) and each one minus itself in round one, paired over problems."""
    out: dict[str, Any] = {"solvers": {}, "diffs": {}}
    for name in ROUND_TWO:
        per_seed = {split: [100 * sum(second[s][split][name].values()) / len(second[s][split][name]) for s in seeds]
                    for split in SPLITS}
        out["solvers"][name] = {"heldout": sum(per_seed["heldout"]) / len(seeds),
                                "heldout_comp": sum(per_seed["heldout_comp"]) / len(seeds), "per_seed": per_seed["heldout"]}
        for split in SPLITS:
            problems = sorted(first[seeds[0]][split][name])
            diffs = [sum(second[s][split][name][p] - first[s][split][name][p] for s in seeds) / len(seeds) for p in problems]
            interval = paired_bootstrap(diffs).scaled(100)
            out["diffs"].setdefault(f"{name}_round2-{name}", {})[split] = {
                "mean": interval.mean, "ci_low": interval.low, "ci_high": interval.high}
    return out


def _order(name: str) -> tuple:
    fixed = ["base", "all_data", "uniform", "ties", "linear", "hard_routing", "hypernetwork"]
    if name.startswith("teacher:"):
        return (2, name)
    if name.startswith("expert_"):
        return (1, int(name.split("_")[1]))
    return (0, fixed.index(name))


def print_tables(summary: dict[str, Any], clusters: dict[int, list[dict[str, Any]]]) -> None:
    seeds = summary["seeds"]
    table = Table(title=f"Greedy pass@1 %, held-out ({summary['problems']['heldout']} problems) and compositional "
                        f"({summary['problems']['heldout_comp']}), mean over {len(seeds)} seed(s); each seed's beside it")
    for col in ("solver", "heldout", "per seed", "heldout_comp", "per seed (comp)"):
        table.add_column(col, justify="left" if col == "solver" else "right")
    for name, s in summary["solvers"].items():
        table.add_row(name, f"{s['heldout']:.1f}", " / ".join(f"{x:.1f}" for x in s["per_seed"]),
                      f"{s['heldout_comp']:.1f}", " / ".join(f"{x:.1f}" for x in s["per_seed_comp"]))
    console.print(table)
    diffs = Table(title="Differences, points: mean [paired bootstrap 95% over problems, per-problem differences "
                        "averaged over seeds]; each seed's own interval on held-out")
    for col in ("difference", "heldout", "heldout_comp", "per seed (heldout)"):
        diffs.add_column(col, justify="left" if col == "difference" else "right")
    for name in DIFFS:
        h, c = summary["diffs"][name], summary["diffs_heldout_comp"][name]
        diffs.add_row(name, f"{h['mean']:+.1f} [{h['ci_low']:+.1f}, {h['ci_high']:+.1f}]",
                      f"{c['mean']:+.1f} [{c['ci_low']:+.1f}, {c['ci_high']:+.1f}]",
                      "  ".join(f"{d['mean']:+.1f} [{d['ci_low']:+.1f}, {d['ci_high']:+.1f}]"
                                for d in summary["diffs_per_seed"][name]))
    console.print(diffs)
    if "round2" in summary:
        table = Table(title="Round two (the customized student joined the teachers over the unverified problems): "
                            "pass@1 % and the difference to round one [paired bootstrap 95%]")
        for col in ("solver", "heldout", "vs round one", "heldout_comp", "vs round one (comp)"):
            table.add_column(col, justify="left" if col == "solver" else "right")
        for name, s in summary["round2"]["solvers"].items():
            d = summary["round2"]["diffs"][f"{name}_round2-{name}"]
            table.add_row(name, f"{s['heldout']:.1f}", _interval(d["heldout"]), f"{s['heldout_comp']:.1f}",
                          _interval(d["heldout_comp"]))
        console.print(table)
    for seed, rows in clusters.items():
        t = Table(title=f"seed {seed}: each expert on the held-out problems routed to it (nearest centroid), pass@1 %")
        for col in ("expert", "train rows", "top family", "routed", "base", "all_data", "expert", "val loss (step)"):
            t.add_column(col, justify="left" if col in ("expert", "top family") else "right")
        for r in rows:
            fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
            t.add_row(r["expert"], str(r["rows"]), f"{r['top_family']} {r['top_share']:.0f}%", str(r["heldout_routed"]),
                      fmt(r["base"]), fmt(r["all_data"]), fmt(r["expert_pass"]),
                      "-" if r["validation_loss"] is None else f"{r['validation_loss']:.3f} ({r['best_step']})")
        console.print(t)


def _interval(d: dict[str, float]) -> str:
    return f"{d['mean']:+.1f} [{d['ci_low']:+.1f}, {d['ci_high']:+.1f}]"


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["solvers"])
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    for ax, split in zip(axes, SPLITS):
        means = [summary["solvers"][n][split] for n in names]
        seeds = [summary["solvers"][n]["per_seed" if split == "heldout" else "per_seed_comp"] for n in names]
        colours = ["#888888" if n in ("base", "all_data") else "#d62728" if n == "hypernetwork" else
                   "#2ca02c" if n.startswith("teacher:") else "#1f77b4" for n in names]
        ax.bar(range(len(names)), means, color=colours)
        for i, values in enumerate(seeds):
            ax.scatter([i] * len(values), values, color="black", s=8, zorder=3)
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        ax.set_title(f"{split} ({summary['problems'][split]} problems; dots: seeds)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("greedy pass@1 (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "ray_config.yaml"))
    parser.add_argument("--setting", default=str(SETTING), help="YAML merged over --config (teachers, student, sizes).")
    parser.add_argument("--suite-seed", type=int, default=1, help="Seed of the synthetic suite (the same problems for every seed).")
    parser.add_argument("--seeds", default="0,1,2", help="Independent runs of the whole pipeline.")
    parser.add_argument("--heldout-per-family", type=int, default=100)
    parser.add_argument("--comp-per-family", type=int, default=50)
    parser.add_argument("--max-new-tokens", type=int, default=192)
    parser.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "learning"))
    parser.add_argument("--round2", action="store_true",
                        help="Then a second round: the customized student joins the teachers over the unverified problems.")
    args = parser.parse_args()

    seeds = [int(s) for s in args.seeds.split(",")]
    setting = yaml.safe_load(Path(args.setting).read_text()) or {}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    per_seed, second, clusters, timings = {}, {}, {}, {}
    for seed in seeds:
        cfg = seed_config(args, seed, setting)
        started = time.monotonic()
        console.rule(f"seed {seed}: {cfg.run_dir}")
        run_pipeline(cfg, console, only=["boost", "disentangle", "customize"])
        trained = time.monotonic()
        per_seed[seed] = measure_seed(cfg, args)
        clusters[seed] = cluster_table(cfg, per_seed[seed])
        timings[seed] = {"pipeline_s": round(trained - started), "eval_s": round(time.monotonic() - trained)}
        console.print(f"seed {seed}: pipeline {timings[seed]['pipeline_s']} s, evaluation {timings[seed]['eval_s']} s")
        if args.round2:
            started = time.monotonic()
            second[seed] = measure_seed(round_two(cfg, args, seed, setting), args, teachers=False)
            timings[seed]["round2_s"] = round(time.monotonic() - started)
    summary = summarize(per_seed, seeds)
    if second:
        summary["round2"] = round_two_summary(per_seed, second, seeds)
    summary.update(clusters={str(s): rows for s, rows in clusters.items()}, timings=timings, suite_seed=args.suite_seed,
                   setting=setting, per_family={str(s): per_family(per_seed[s]) for s in seeds})
    print_tables(summary, clusters)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(summary, out / "learning.png")
    console.print(f"written: {out / 'summary.json'}, {out / 'learning.png'}")


def per_family(verdicts: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """{split: {solver: {family: pass@1 %}}} of one seed."""
    out: dict[str, Any] = {}
    for split, by_solver in verdicts.items():
        family = by_solver["_family"]
        out[split] = {}
        for solver, passed in by_solver.items():
            if solver.startswith("_"):
                continue
            groups = defaultdict(list)
            for pid, ok in passed.items():
                groups[family[pid]].append(ok)
            out[split][solver] = {f: round(100 * sum(v) / len(v), 1) for f, v in sorted(groups.items())}
    return out


if __name__ == "__main__":
    main()
