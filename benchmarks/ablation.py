"""Ablation on held-out synthetic problems: what each way of using the LoRA experts gives.

Solvers (one table row each), all prompted in the one training format and decoded greedily:
- base:            the base model alone;
- all-data LoRA:   the baseline LoRA trained on every row (Disentangle's all_data);
- expert_<k>:      each single expert, for every problem;
- uniform:         every expert at weight 1/E per rank (the experts' average, one rank-E*r LoRA);
- peft TIES /
  peft linear:     peft's own static merges (add_weighted_adapter) of the experts;
- hard routing:    each problem to the expert of its nearest cluster centroid (cosine);
- hypernetwork:    the Customize stage's input-aware rank-wise weights.

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

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.table import Table  # noqa: E402

from bdc_ray import storage  # noqa: E402
from bdc_ray.artifacts.layout import RunLayout  # noqa: E402
from bdc_ray.customize.data import encode_rows  # noqa: E402
from bdc_ray.problems.prompt_format import prompt_text  # noqa: E402
from bdc_ray.console import wide_console  # noqa: E402
from bdc_ray.llm.base import SamplingParams  # noqa: E402
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


def peft_merges(manifest, out: Path) -> dict[str, str]:
    """peft's TIES and linear merges of the experts, saved as adapter folders."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folders = {"peft TIES": out / "ties", "peft linear": out / "linear"}
    if all((f / "adapter_config.json").exists() for f in folders.values()):
        return {k: str(v) for k, v in folders.items()}
    names = [e.name for e in manifest.experts]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(manifest.base_model),
                                      manifest.experts[0].path, adapter_name=names[0])
    for e in manifest.experts[1:]:
        model.load_adapter(e.path, adapter_name=e.name)
    model.add_weighted_adapter(names, [1.0] * len(names), "ties", combination_type="ties", density=0.5)
    model.add_weighted_adapter(names, [1.0 / len(names)] * len(names), "linear", combination_type="linear")
    model.save_pretrained(str(out), selected_adapters=["ties", "linear"])
    return {k: str(v) for k, v in folders.items()}


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

    from bdc_ray.customize import load_customized
    from bdc_ray.artifacts.experts import load_manifest
    from bdc_ray.artifacts.sft import problem_rows
    from bdc_ray.llm.hf_backend import TransformersLLM
    from bdc_ray.sandbox import Sandbox

    started = time.time()
    torch.set_num_threads(args.threads)
    run = RunLayout(str(Path(args.run_dir).resolve()))
    if args.prepare:
        prepare(run, args)
    out = Path(run.root) / "ablation"
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(run.experts_dir)
    if manifest.all_data is None:
        raise SystemExit(f"{run.root}: the experts manifest has no all_data baseline")
    solver = load_customized(run.hypernet_dir, threads=args.threads)
    composed, tokenizer = solver.composed, solver.tokenizer
    problems = held_out(args)
    rows = problem_rows(problems)
    statements = [p.prompt for p in problems]
    prompts = [prompt_text(s) for s in statements]
    examples = encode_rows(rows, tokenizer, composed.model.config.max_position_embeddings)
    n = len(problems)

    # Weights of every method that is a routing of the one composed model.
    features = solver.router.features(statements)
    clusters = {e.cluster: i for i, e in enumerate(manifest.experts)}
    similarity = features[:, -len(solver.router.centroids):].cpu().numpy()
    similarity[:, [c for c in range(similarity.shape[1]) if c not in clusters]] = -np.inf
    nearest = [clusters[int(c)] for c in similarity.argmax(1)]
    routed = {
        "base": composed.zeros(n),
        **{e.name: composed.one_expert(i, n) for i, e in enumerate(manifest.experts)},
        "uniform": composed.uniform(n),
        "hard routing": torch.cat([composed.one_expert(e, 1) for e in nearest]),
        "hypernetwork": solver.routing(statements),
    }
    adapters = {"all-data LoRA": manifest.all_data.path, **peft_merges(manifest, out / "merged")}
    llm = TransformersLLM(manifest.base_model, adapters=adapters, device="cpu", threads=args.threads, max_batch_size=16)
    greedy = SamplingParams(max_new_tokens=args.max_new_tokens)

    order = ["base", "all-data LoRA", *[e.name for e in manifest.experts], "uniform", "peft TIES", "peft linear",
             "hard routing", "hypernetwork"]
    results = {}
    with Sandbox(workers=2) as sandbox:
        for name in order:
            t0 = time.time()
            if name in routed:
                weights = routed[name]
                texts, _ = solver.generate_with_weights(prompts, weights, greedy)
                loss = validation_loss(composed.model, examples, tokenizer.pad_token_id, forward=lambda batch, ids, mask: composed(
                    weights[[examples[i].row for i in batch]], input_ids=ids, attention_mask=mask).logits)
            else:
                texts = llm.generate(prompts, greedy, adapter=name)
                llm.model.set_adapter(name)
                loss = validation_loss(llm.model, examples, tokenizer.pad_token_id)
            summary = score(problems, [t[0] for t in texts], sandbox)
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
    colours = ["#888888" if k in ("base", "all-data LoRA") else "#d62728" if k == "hypernetwork" else "#1f77b4"
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
