"""Ablation on held-out synthetic problems: what each way of using the LoRA experts gives.

Solvers (one table row each): every way of using the experts that benchmarks/solvers.py names
(base, all_data, each expert, uniform, peft ties and linear merges, hard_routing, hypernetwork),
all prompted in the one training format and decoded greedily.

Columns: greedy pass@1 on every test (public + hidden), overall and per family, and the
validation loss (next-token loss of the held-out reference solutions, prompt masked). The held-out
split is key-disjoint from the training split (bdc_ray/problems/synth.py).

It reads a run folder with Disentangle's artifacts (`disentangle/experts/manifest.json` with
all_data, `disentangle/clusters/`) and the hypernetwork (`customize/hypernet/`; trained here
when missing). `--prepare` first builds all of it on the synthetic suite: a tiny base model, SFT
rows from the suite's TRAIN split (reference solutions + thoughts: more data than a Boost run
gives), clusters, experts (Ray Train) and the hypernetwork.

    .venv/bin/python benchmarks/ablation.py --run-dir runs/ablation --prepare
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from support import ROOT  # first: the repository on the path, offline settings
from solvers import SolverSet  # noqa: E402

import torch  # noqa: E402
from rich.table import Table  # noqa: E402

from bdc_ray import storage  # noqa: E402
from bdc_ray.artifacts.layout import RunLayout  # noqa: E402
from bdc_ray.customize.data import encode_rows  # noqa: E402
from bdc_ray.console import wide_console  # noqa: E402
from bdc_ray.training import validation_loss  # noqa: E402
from bdc_ray.problems.synth import SynthConfig, generate_suite  # noqa: E402

console = wide_console()


def prepare(run: RunLayout, args) -> None:
    """Base model, sft.jsonl, clusters, experts and hypernetwork in the run folder (each skipped when done)."""
    import ray

    from bdc_ray.artifacts.sft import problem_rows, write_sft_rows
    from bdc_ray.customize import CustomizeConfig, train_stage, tune_stage
    from bdc_ray.disentangle import ClusterConfig, ExpertsConfig, run_cluster_stage, run_train_stage
    from bdc_ray.tiny import TinyModelConfig, build_tiny

    # Absolute: Ray Train workers do not run in this folder.
    base = str(Path(args.base).resolve()) if args.base else str(build_tiny(TinyModelConfig(seed=0), args.models, threads=1))
    sft = run.sft_file
    if not storage.exists(sft):
        train = generate_suite(SynthConfig(seed=args.seed, train_per_family=args.train_per_family,
                                           heldout_per_family=0, heldout_comp_per_family=0)).train
        write_sft_rows(sft, problem_rows(train))
        console.print(f"SFT rows: the synthetic suite's train split, {len(train)} reference solutions -> {sft}")
    run_cluster_stage(sft, run.clusters_dir, ClusterConfig(k=args.k))
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    try:
        experts = ExpertsConfig(steps=args.expert_steps, scaling={"num_workers": 1}, deepspeed=False,
                                lora={"r": args.rank, "lora_alpha": 2.0 * args.rank})
        run_train_stage(run, experts, base)
        customize = CustomizeConfig(train={"steps": args.hypernet_steps, "eval_every": 25},
                                    search={"num_samples": args.trials})
        if args.tune:
            tune_stage(run, customize)
        else:
            train_stage(run, customize)
    finally:
        ray.shutdown()


def held_out(args):
    suite = generate_suite(SynthConfig(seed=args.seed, train_per_family=0, heldout_per_family=args.per_family,
                                       heldout_comp_per_family=0))
    return suite.heldout


def score(problems, completions: list[str], sandbox) -> dict:
    from bdc_ray.eval.evaluate import Sample, evaluate_samples, summarize

    samples = [Sample(task_id=p.id, completion=c) for p, c in zip(problems, completions)]
    records, _ = evaluate_samples(problems, samples, sandbox.run_many, tests="all")
    return summarize(records, [1], group_by="family")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--prepare", action="store_true", help="Build base, rows, clusters, experts and hypernetwork first.")
    parser.add_argument("--base", help="--prepare: base model folder (default: a tiny model built under --models).")
    parser.add_argument("--models", default=str(ROOT / "runs" / "models"))
    parser.add_argument("--train-per-family", type=int, default=200)
    parser.add_argument("--k", type=int, default=None, help="--prepare: clusters (default: by silhouette).")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--expert-steps", type=int, default=200)
    parser.add_argument("--hypernet-steps", type=int, default=200)
    parser.add_argument("--tune", action="store_true", help="--prepare: Ray Tune instead of one training.")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="Synthetic suite seed (the training split's).")
    parser.add_argument("--per-family", type=int, default=20, help="Held-out problems per family.")
    parser.add_argument("--max-new-tokens", type=int, default=192)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from bdc_ray.artifacts.sft import problem_rows
    from bdc_ray.sandbox import Sandbox

    started = time.time()
    torch.set_num_threads(args.threads)
    run = RunLayout(str(Path(args.run_dir).resolve()))
    if args.prepare:
        prepare(run, args)
    out = Path(run.root) / "ablation"
    out.mkdir(parents=True, exist_ok=True)
    solvers = SolverSet(run, out / "merged", threads=args.threads, max_new_tokens=args.max_new_tokens)
    manifest, composed, tokenizer = solvers.manifest, solvers.composed, solvers.tokenizer
    problems = held_out(args)
    statements = [p.prompt for p in problems]
    examples = encode_rows(problem_rows(problems), tokenizer, composed.model.config.max_position_embeddings)
    n = len(problems)

    order = solvers.names
    results = {}
    with Sandbox(workers=2) as sandbox:
        for name in order:
            t0 = time.time()
            texts = solvers.generate(name, statements)
            weights = solvers.weights(name, statements)
            if weights is None:
                solvers.llm.model.set_adapter(name)
                loss = validation_loss(solvers.llm.model, examples, tokenizer.pad_token_id)
            else:
                loss = validation_loss(composed.model, examples, tokenizer.pad_token_id, forward=lambda batch, ids, mask: composed(
                    weights[[examples[i].row for i in batch]], input_ids=ids, attention_mask=mask).logits)
            summary = score(problems, texts, sandbox)
            results[name] = {"pass@1": summary["pass@1"], "val_loss": loss,
                             "by_family": {f: s["pass@1"] for f, s in summary["by_family"].items()},
                             "seconds": round(time.time() - t0, 1)}
            console.print(f"{name}: pass@1 {100 * summary['pass@1']:.1f}%  val loss {loss:.4f}  ({time.time() - t0:.0f} s)")
    report(results, order, out, args, n, manifest, time.time() - started)


def report(results: dict, order: list[str], out: Path, args, n: int, manifest, wall_s: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = sorted(next(iter(results.values()))["by_family"])
    table = Table(title=f"ablation: {n} held-out synthetic problems ({args.per_family} per family), greedy pass@1 %, "
                        f"{len(manifest.experts)} experts r={manifest.lora.r}")
    for col in ("solver", "pass@1", *families, "val loss"):
        table.add_column(col, justify="left" if col == "solver" else "right")
    for name in order:
        r = results[name]
        table.add_row(name, f"{100 * r['pass@1']:.1f}", *[f"{100 * r['by_family'][f]:.0f}" for f in families],
                      f"{r['val_loss']:.4f}")
    console.print(table)
    storage.write_json_atomic(str(out / "results.json"), {"args": vars(args), "problems": n, "results": results,
                                                        "wall_s": round(wall_s, 1)})
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = ["#888888" if k in ("base", "all_data") else "#d62728" if k == "hypernetwork" else "#1f77b4"
               for k in order]
    left.bar(range(len(order)), [100 * results[k]["pass@1"] for k in order], color=colours)
    left.set_ylabel("greedy pass@1 (%)")
    losses = [results[k]["val_loss"] for k in order]
    right.bar(range(len(order)), losses, color=colours)
    right.set_ylim(0.9 * min(losses), 1.02 * max(losses))  # the differences are small: the axis does not start at 0
    right.set_ylabel("validation loss (held-out references; axis cut)")
    for ax in (left, right):
        ax.set_xticks(range(len(order)), order, rotation=45, ha="right")
    fig.suptitle(f"Held-out synthetic problems: {n} ({args.per_family} per family)")
    fig.tight_layout()
    fig.savefig(out / "ablation.png", dpi=110)
    console.print(f"results: {out / 'results.json'}  chart: {out / 'ablation.png'}  ({wall_s:.0f} s)")


if __name__ == "__main__":
    main()
