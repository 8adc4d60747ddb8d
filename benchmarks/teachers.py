"""Build the teachers and the student of `benchmarks/teachers.yaml` and measure each one's strength.

What decides whether Boost's search can matter (issue 16): on the Boost problems (the TRAINING
split of the multi-part families, suite seed S) the teachers' plain samples (the root of a tree:
the bare problem, no thoughts) should solve well under half, and the teachers should be right
on different parts. Measured per model from `--samples` plain samples per problem at the agents'
own sampling settings, on the PUBLIC tests (what the search sees), every test run:
  - public pass@1 and pass@4 (unbiased), verified pass@1 (public and hidden tests);
  - the ROOT share: problems a first expansion of the 2-agent root solves (two samples of each
    teacher, as `width: 2` draws them), computed exactly from each teacher's pass counts;
  - per part (a module's function, a multibranch's case) the share of samples passing every
    public test of that part, and how often the two teachers are each better on a different part
    of one problem (complementarity), and problems where every part is passed by some sample of
    some teacher while no sample passes them all (what only a combination can solve);
  - held-out greedy pass@1 per family (all tests), every family the model was trained on.

    .venv/bin/python benchmarks/teachers.py --suite-seed 11 --per-family 40 --samples 16 --out runs/benchmarks/teachers

Builds run two at a time (one torch thread each; a build is a function of its recipe, cached).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from math import comb
from pathlib import Path
from typing import Any

import yaml

from support import ROOT  # first: the repository on the path, offline settings

from rich.table import Table  # noqa: E402

from bdc_ray.boost.prompts import PromptBook  # noqa: E402
from bdc_ray.config import load_config  # noqa: E402
from bdc_ray.console import wide_console  # noqa: E402
from bdc_ray.eval.passk import pass_at_k  # noqa: E402
from bdc_ray.problems.synth import ALL_FAMILIES, MULTI_PART_FAMILIES, SynthConfig, generate_suite  # noqa: E402
from bdc_ray.problems.types import Problem  # noqa: E402
from bdc_ray.sandbox import Sandbox  # noqa: E402
from bdc_ray.tiny import TinyModelConfig, build_tiny, load_build_info  # noqa: E402

RECIPES = ROOT / "benchmarks" / "teachers.yaml"
ROOT_WIDTH = 2  # samples per teacher in the root's first expansion (`search.width`)


def load_recipes(path: Path, config: str):
    """(config with the teachers as agents, {name: recipe} of teachers and student, PromptBook per teacher)."""
    doc = yaml.safe_load(path.read_text())
    cfg = load_config(config, overrides=doc["overlay"])
    recipes = {a.name: a.tiny for a in cfg.models.agents if a.tiny is not None}
    recipes[doc["student"].get("name") or "student"] = TinyModelConfig.model_validate(doc["student"])
    books = {a.name: PromptBook(style=a.style, **a.prompts.model_dump()) for a in cfg.models.agents}
    return cfg, recipes, books


def _build(recipe: TinyModelConfig, root: str) -> tuple[str, float]:
    started = time.monotonic()
    path = build_tiny(recipe, root, threads=1, progress=False)
    return str(path), time.monotonic() - started


def build_all(recipes: dict[str, TinyModelConfig], root: str) -> tuple[dict[str, Path], dict[str, float], float]:
    """Every recipe built (or reused) two at a time, in recipe order: the teachers first."""
    started = time.monotonic()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {name: pool.submit(_build, recipe, root) for name, recipe in recipes.items()}
        done = {name: f.result() for name, f in futures.items()}
    return {n: Path(p) for n, (p, _) in done.items()}, {n: s for n, (_, s) in done.items()}, time.monotonic() - started


def sample_programs(path: Path, problems: list[Problem], book: PromptBook, n: int, seed: int) -> list[list[str]]:
    """`n` plain samples per problem (the root's prompt), as the agent draws them."""
    from bdc_ray.llm.hf_backend import TransformersLLM

    llm = TransformersLLM(str(path), device="cpu", threads=1, max_batch_size=16)
    out = []
    for problem in problems:
        request = book.code(problem.public_view(), [], n)
        texts, _ = llm.generate_with_stats(request.prompts, request.sampling.model_copy(update={"seed": seed}))
        out.append([book.parse_code(t) for t in texts[0]])
    return out


def greedy_programs(path: Path, problems: list[Problem], book: PromptBook) -> list[str]:
    from bdc_ray.llm.hf_backend import TransformersLLM

    llm = TransformersLLM(str(path), device="cpu", threads=1, max_batch_size=16)
    requests = [book.code(p.public_view(), [], 1) for p in problems]
    greedy = requests[0].sampling.model_copy(update={"temperature": 0.0})
    texts, _ = llm.generate_with_stats([r.prompts[0] for r in requests], greedy)
    return [book.parse_code(t[0]) for t in texts]


def part_scores(problem: Problem, outcomes: list[list[bool]]) -> dict[str, float]:
    """Per part label: the share of samples passing every public test of that part."""
    parts = problem.metadata["public_parts"]
    labels = list(dict.fromkeys(parts))
    return {
        label: sum(all(ok for ok, part in zip(sample, parts) if part == label) for sample in outcomes) / len(outcomes)
        for label in labels
    }


def part_kind(family: str, label: str) -> str:
    """What a part is, across problems: a module function's family, a multibranch case's position."""
    return f"{family}:{label.split(':')[1]}" if family == "module" else f"{family}:{label}"


def score_boost_problems(paths, books, problems, n, seed, sandbox) -> dict[str, Any]:
    """Each model's plain samples on the Boost problems: public and hidden results, per part."""
    scores: dict[str, Any] = {}
    for name, path in paths.items():
        book = books.get(name) or next(iter(books.values()))
        started = time.monotonic()
        programs = sample_programs(path, problems, book, n, seed)
        generation_s = time.monotonic() - started
        jobs = [(prog, list(p.public_tests)) for p, progs in zip(problems, programs) for prog in progs]
        results = iter(sandbox.run_many(jobs))
        rows = []
        for problem, progs in zip(problems, programs):
            outcomes = [[t.status == "passed" for t in next(results).tests] for _ in progs]
            passing = [prog for prog, o in zip(progs, outcomes) if len(o) == len(problem.public_tests) and all(o)]
            rows.append({"id": problem.id, "family": problem.family, "n": n, "public_c": len(passing),
                         "parts": part_scores(problem, outcomes), "passing": sorted(set(passing))})
        hidden = {}
        unique = sorted({prog for r in rows for prog in r["passing"]})
        by_id = {p.id: p for p in problems}
        owners = [(r["id"], prog) for r in rows for prog in r["passing"]]
        verdicts = sandbox.run_many([(prog, list(by_id[i].hidden_tests)) for i, prog in owners])
        for (i, prog), v in zip(owners, verdicts):
            hidden[(i, prog)] = v.status == "passed"
        for r, progs in zip(rows, programs):
            r["hidden_c"] = sum(hidden.get((r["id"], prog), False) for prog in progs)
            del r["passing"]
        scores[name] = {"rows": rows, "generation_s": round(generation_s, 1), "unique_passing": len(unique)}
    return scores


def _fails_all(n: int, c: int, k: int) -> float:
    return comb(n - c, k) / comb(n, k) if n - c >= k else 0.0


def summarize(scores: dict[str, Any], teachers: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"models": {}, "parts": {}, "pair": {}}
    for name, s in scores.items():
        rows = s["rows"]
        fam = defaultdict(list)
        for r in rows:
            fam[r["family"]].append(r)
        def agg(rs):
            return {
                "problems": len(rs),
                "public_pass_at_1": sum(r["public_c"] / r["n"] for r in rs) / len(rs),
                "public_pass_at_4": sum(pass_at_k(r["n"], r["public_c"], 4) for r in rs) / len(rs),
                "verified_pass_at_1": sum(r["hidden_c"] / r["n"] for r in rs) / len(rs),
                "root_width_solve": sum(1 - _fails_all(r["n"], r["public_c"], ROOT_WIDTH) for r in rs) / len(rs),
            }
        out["models"][name] = {"all": agg(rows), **{f: agg(rs) for f, rs in fam.items()}}
        kinds = defaultdict(list)
        for r in rows:
            for label, v in r["parts"].items():
                kinds[part_kind(r["family"], label)].append(v)
        out["parts"][name] = {k: sum(v) / len(v) for k, v in sorted(kinds.items())}
    if len(teachers) >= 2:
        a, b = (scores[t]["rows"] for t in teachers[:2])
        root, split, union_only = [], [], []
        for ra, rb in zip(a, b):
            root.append(1 - _fails_all(ra["n"], ra["public_c"], ROOT_WIDTH) * _fails_all(rb["n"], rb["public_c"], ROOT_WIDTH))
            da = [ra["parts"][k] - rb["parts"][k] for k in ra["parts"]]
            split.append(max(da) >= 0.25 and min(da) <= -0.25)
            covered = all(max(ra["parts"][k], rb["parts"][k]) > 0 for k in ra["parts"])
            union_only.append(covered and ra["public_c"] == 0 and rb["public_c"] == 0)
        out["pair"] = {
            "teachers": teachers[:2],
            "root_share": sum(root) / len(root),
            "each_better_on_a_different_part": sum(split) / len(split),
            "every_part_passed_by_some_sample_but_no_sample_passes_all": sum(union_only) / len(union_only),
            "problems": len(root),
        }
    return out


def heldout_scores(paths, books, per_family: int, seed: int, sandbox) -> dict[str, dict[str, float]]:
    """Greedy pass@1 on all tests of every family's held-out split (a student never trained on the
    multi-part families is scored on them too: that is where it is meant to be weak)."""
    suite = generate_suite(SynthConfig(seed=seed, train_per_family=0, heldout_per_family=per_family,
                                       heldout_comp_per_family=0, families=list(ALL_FAMILIES)))
    problems = suite.heldout
    out = {}
    for name, path in paths.items():
        book = books.get(name) or next(iter(books.values()))
        programs = greedy_programs(path, problems, book)
        results = sandbox.run_many([(prog, list(p.tests)) for prog, p in zip(programs, problems)])
        fam = defaultdict(list)
        for p, r in zip(problems, results):
            fam[p.family].append(r.status == "passed")
        out[name] = {f: sum(v) / len(v) for f, v in fam.items()}
        out[name]["all"] = sum(sum(v) for v in fam.values()) / len(problems)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "ray_config.yaml"))
    parser.add_argument("--recipes", default=str(RECIPES))
    parser.add_argument("--suite-seed", type=int, default=11, help="Suite seed of the Boost problems (training split).")
    parser.add_argument("--families", default=",".join(MULTI_PART_FAMILIES), help="Families of the Boost problems.")
    parser.add_argument("--per-family", type=int, default=40, help="Boost problems per family.")
    parser.add_argument("--samples", type=int, default=16, help="Plain samples per problem and model.")
    parser.add_argument("--seed", type=int, default=0, help="Sampling seed.")
    parser.add_argument("--heldout-per-family", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "teachers"))
    args = parser.parse_args()

    console = wide_console()
    cfg, recipes, books = load_recipes(Path(args.recipes), args.config)
    teachers = [a.name for a in cfg.models.agents]
    paths, build_s, wall = build_all(recipes, cfg.models.build_root)
    builds = Table(title=f"Builds (two at a time, one thread each; schedule wall {wall:.0f} s; cached builds are reused)")
    for col in ("model", "steps", "final loss", "train tasks", "dropped", "train s", "tokens/s", "context", "this call s"):
        builds.add_column(col, justify="left" if col == "model" else "right")
    info = {}
    for name, path in paths.items():
        i = load_build_info(path)
        info[name] = i.model_dump(mode="json", exclude={"loss_curve"})
        builds.add_row(name, f"{i.steps_done}/{i.config.steps}", f"{i.final_loss:.3f}", str(i.train_tasks), str(i.dropped_tasks),
                       f"{i.train_s:.0f}", f"{i.tokens_per_s:.0f}", str(i.config.context), f"{build_s[name]:.0f}")
    console.print(builds)

    families = args.families.split(",")
    suite = generate_suite(SynthConfig(seed=args.suite_seed, train_per_family=args.per_family, heldout_per_family=0,
                                       heldout_comp_per_family=0, families=families))
    with Sandbox(workers=2, limits=cfg.sandbox.limits) as sandbox:
        scores = score_boost_problems(paths, books, suite.train, args.samples, args.seed, sandbox)
        summary = summarize(scores, teachers)
        held = heldout_scores(paths, books, args.heldout_per_family, args.suite_seed, sandbox)

    strength = Table(title=f"Plain samples on the Boost problems ({len(suite.train)} training problems of {', '.join(families)}, "
                           f"suite seed {args.suite_seed}; {args.samples} samples each, public tests unless said)")
    for col in ("model", "family", "public pass@1", "public pass@4", "verified pass@1", f"solved by {ROOT_WIDTH} samples"):
        strength.add_column(col, justify="left" if col in ("model", "family") else "right")
    for name, per in summary["models"].items():
        for family, s in per.items():
            strength.add_row(name, family, *(f"{100 * s[k]:.1f}" for k in ("public_pass_at_1", "public_pass_at_4", "verified_pass_at_1",
                                                                          "root_width_solve")))
    console.print(strength)
    kinds = sorted({k for per in summary["parts"].values() for k in per})
    parts = Table(title="Per part: share of plain samples passing every public test of the part, %")
    parts.add_column("part")
    for name in summary["parts"]:
        parts.add_column(name, justify="right")
    for k in kinds:
        parts.add_row(k, *(f"{100 * summary['parts'][n].get(k, 0):.0f}" for n in summary["parts"]))
    console.print(parts)
    if summary["pair"]:
        pair = summary["pair"]
        console.print(f"ROOT share (the first expansion of the 2-agent root, {ROOT_WIDTH} samples per teacher solves it): "
                      f"{100 * pair['root_share']:.1f}% of {pair['problems']}; each teacher better on a different part "
                      f"(by >= 25 points): {100 * pair['each_better_on_a_different_part']:.1f}%; every part passed by some "
                      f"sample but no sample passing all: {100 * pair['every_part_passed_by_some_sample_but_no_sample_passes_all']:.1f}%")
    ht = Table(title=f"Held-out greedy pass@1 (all tests, {args.heldout_per_family} per family), %")
    fams = sorted({f for v in held.values() for f in v if f != "all"})
    for col in ("model", *fams, "all"):
        ht.add_column(col, justify="left" if col == "model" else "right")
    for name, v in held.items():
        ht.add_row(name, *("-" if f not in v else f"{100 * v[f]:.0f}" for f in (*fams, "all")))
    console.print(ht)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"args": vars(args), "builds": info, "build_schedule_wall_s": wall, "summary": summary, "heldout": held,
              "per_problem": {n: s["rows"] for n, s in scores.items()},
              "generation_s": {n: s["generation_s"] for n, s in scores.items()}}
    (out / "teachers.json").write_text(json.dumps(record, indent=2))
    print(f"written: {out / 'teachers.json'}")


if __name__ == "__main__":
    main()
