"""Do cluster experts beat the all-data LoRA on their own cluster? Held-out loss and greedy pass@1.

Setup (everything the pipeline would do, on data big enough to measure):
- base: the config's first agent (tiny-a), built or reused under models.build_root;
- training data: SFT rows made from the synthetic suite's TRAIN split of the run's data seed
  (reference thoughts + code; a Boost run gives far fewer rows than a benchmark needs);
- clusters: problem embeddings (bdc_ray.disentangle.embed) clustered with KMeans (clusters.py);
- runs: one expert per cluster and the all-data baseline, all with the SAME optimizer steps,
  trained together on Ray Train (experts.train_experts);
- held-out: the suite's held-out split (constants never trained on), each problem assigned to
  its nearest centroid, exactly as routing would.

For every cluster, on its held-out problems: validation loss (response tokens) and greedy pass@1
(all tests, run in the project's sandbox) of (a) the base model, (b) the all-data LoRA, (c) that
cluster's expert. The last row routes every held-out problem to its cluster's expert.

    .venv/bin/python benchmarks/experts_quality.py --steps 200
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

from support import ROOT, first_tiny_base  # first: the repository on the path, offline settings

from rich.table import Table  # noqa: E402

from bdc_ray.config import load_config  # noqa: E402
from bdc_ray.disentangle.clusters import assign, fit_clusters  # noqa: E402
from bdc_ray.disentangle.embed import embed_texts  # noqa: E402
from bdc_ray.disentangle.expert_config import ExpertsConfig  # noqa: E402
from bdc_ray.artifacts.sft import problem_rows, prompt_response  # noqa: E402
from bdc_ray.console import wide_console  # noqa: E402
from bdc_ray.training import encode_pairs, model_context, validation_loss  # noqa: E402
from bdc_ray.problems.synth import generate_suite  # noqa: E402

MAX_NEW_TOKENS = 160
"""Covers the longest reference program of the suite (as bdc_ray.tiny.eval)."""


def validation_losses(base: str, adapters: dict[str, str], rows_by_cluster: dict[int, list[dict]]) -> dict:
    """{model: {cluster: loss}} for 'base', 'all_data' and each expert on its own cluster."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base).eval()
    context = model_context(tokenizer, model.config, None)
    examples = {k: encode_pairs(tokenizer, [prompt_response(r) for r in rows], context) for k, rows in rows_by_cluster.items()}
    losses: dict[str, dict[int, float]] = {"base": {k: validation_loss(model, ex, tokenizer.pad_token_id) for k, ex in examples.items()}}
    for name, path in adapters.items():
        peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), path).eval()
        clusters = examples if name == "all_data" else {int(name.split("_")[1]): examples[int(name.split("_")[1])]}
        losses[name] = {k: validation_loss(peft, ex, tokenizer.pad_token_id) for k, ex in clusters.items() if ex}
    return losses


def greedy_pass(base: str, adapters: dict[str, str], problems_by_cluster: dict[int, list], limits) -> dict:
    """{model: {problem id: passed}}: greedy programs of each model, judged on all tests in the sandbox."""
    from bdc_ray.problems.prompt_format import prompt_text
    from bdc_ray.eval.evaluate import Sample, evaluate_samples
    from bdc_ray.llm.base import SamplingParams
    from bdc_ray.llm.hf_backend import TransformersLLM
    from bdc_ray.sandbox import Sandbox

    llm = TransformersLLM(base, adapters=adapters, device="cpu", threads=2, max_batch_size=16)
    sampling = SamplingParams(max_new_tokens=MAX_NEW_TOKENS)
    every = [p for ps in problems_by_cluster.values() for p in ps]
    jobs: dict[str, list[tuple[str, str]]] = {}
    for model in ["base", *adapters]:
        if model in ("base", "all_data"):
            chosen = every
        else:
            chosen = problems_by_cluster[int(model.split("_")[1])]
        texts = llm.generate([prompt_text(p.prompt) for p in chosen], sampling, adapter=None if model == "base" else model)
        jobs[model] = [(p.id, t[0]) for p, t in zip(chosen, texts, strict=True)]
        print(f"generated {len(chosen)} programs with {model}", flush=True)
    samples = [Sample(task_id=pid, completion=text, model=model) for model, pairs in jobs.items() for pid, text in pairs]
    with Sandbox(workers=2, limits=limits) as sandbox:
        records, errors = evaluate_samples(every, samples, sandbox.run_many, tests="all")
    if errors:
        raise SystemExit(f"evaluation lost samples: {errors[:3]}")
    passed: dict[str, dict[str, bool]] = defaultdict(dict)
    for sample, record in zip(samples, records, strict=True):
        passed[sample.model][sample.task_id] = record["status"] == "passed"
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "ray_config.yaml"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "experts_quality"))
    parser.add_argument("--k", type=int, default=6, help="Clusters (0: choose by silhouette).")
    parser.add_argument("--rows-per-family", type=int, default=200, help="Training tasks per family (train split).")
    parser.add_argument("--heldout-per-family", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200, help="Optimizer steps of EVERY run.")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--r", type=int, default=8)
    parser.add_argument("--micro-batch-tokens", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=1, help="Ray Train workers per run (1 CPU each).")
    parser.add_argument("--deepspeed", action="store_true", help="Train through DeepSpeed ZeRO-2 (default: plain torch).")
    args = parser.parse_args()

    import ray

    from bdc_ray.disentangle.experts import train_experts
    from bdc_ray.sandbox import SandboxLimits

    started = time.monotonic()
    bdc = load_config(args.config)
    base = first_tiny_base(bdc)
    synth = bdc.data.synthetic.model_copy(
        update={"train_per_family": args.rows_per_family, "heldout_per_family": args.heldout_per_family,
                "heldout_comp_per_family": 0}
    )
    suite = generate_suite(synth)
    rows = problem_rows(suite.train)
    train_emb = embed_texts([r["problem"] for r in rows], cache_dir=str(Path(args.out) / "embeddings"))
    clustering = fit_clusters(train_emb, [r["problem_id"] for r in rows], args.k or None)
    by_cluster: dict[int, list[dict]] = defaultdict(list)
    for row, label in zip(rows, clustering.labels.tolist(), strict=True):
        by_cluster[label].append(row)
    held = suite.heldout
    held_labels = assign(embed_texts([p.prompt for p in held], cache_dir=str(Path(args.out) / "embeddings")),
                         clustering.centroids)
    held_by_cluster: dict[int, list] = defaultdict(list)
    for problem, label in zip(held, held_labels.tolist(), strict=True):
        held_by_cluster[label].append(problem)
    print(f"K={clustering.k}; train rows per cluster {[len(by_cluster[k]) for k in range(clustering.k)]}; "
          f"held-out per cluster {[len(held_by_cluster[k]) for k in range(clustering.k)]}", flush=True)

    cfg = ExpertsConfig(
        steps=args.steps, lr=args.lr, lora={"r": args.r, "lora_alpha": 2 * args.r},
        micro_batch_tokens=args.micro_batch_tokens, checkpoint_every=max(1, args.steps // 4), deepspeed=args.deepspeed,
        scaling={"num_workers": args.workers, "resources_per_worker": {"CPU": 1.0}, "max_failures": 1},
    )
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        train_started = time.monotonic()
        manifest = train_experts(dict(by_cluster), rows, clustering.centroids, base, cfg, str(Path(args.out) / "experts"))
        train_s = time.monotonic() - train_started
    finally:
        ray.shutdown()
    adapters = {e.name: e.path for e in manifest.experts} | {"all_data": manifest.all_data.path}
    held_rows = {k: problem_rows(ps) for k, ps in held_by_cluster.items()}
    losses = validation_losses(base, adapters, held_rows)
    passed = greedy_pass(base, adapters, dict(held_by_cluster), SandboxLimits(time_s=2.0, program_time_s=20.0))

    def rate(model: str, problems) -> float:
        return 100 * sum(passed[model][p.id] for p in problems) / len(problems) if problems else float("nan")

    table = Table(title=f"held-out (synthetic seed {synth.seed}), {args.steps} steps per run, r={args.r}, "
                        f"{len(rows)} training rows; loss / greedy pass@1 %")
    for col in ("cluster", "top family", "train rows", "held-out", "loss base", "loss all-data", "loss expert",
                "pass base", "pass all-data", "pass expert", "expert wins"):
        table.add_column(col, justify="left" if col == "top family" else "right")
    results, wins = [], 0
    for k in range(clustering.k):
        families = Counter(r["family"] for r in by_cluster[k])
        family, count = families.most_common(1)[0]
        held_k = held_by_cluster.get(k, [])
        expert = f"expert_{k}"
        row = {
            "cluster": k, "top_family": family, "top_share": count / len(by_cluster[k]), "train_rows": len(by_cluster[k]),
            "heldout": len(held_k),
            "loss": {m: losses[m].get(k) for m in ("base", "all_data", expert) if m in losses},
            "pass": {m: rate(m, held_k) for m in ("base", "all_data", expert) if m in passed},
        }
        better = bool(held_k) and expert in losses and losses[expert][k] < losses["all_data"][k] and \
            rate(expert, held_k) >= rate("all_data", held_k)
        wins += better
        results.append(row)
        table.add_row(str(k), f"{family} {100 * count / len(by_cluster[k]):.0f}%", str(len(by_cluster[k])), str(len(held_k)),
                      *(f"{row['loss'].get(m):.3f}" if row["loss"].get(m) is not None else "-" for m in ("base", "all_data", expert)),
                      *(f"{row['pass'].get(m, float('nan')):.1f}" for m in ("base", "all_data", expert)),
                      "yes" if better else "no")
    routed = sum(passed[f"expert_{k}"][p.id] for k, ps in held_by_cluster.items() for p in ps if f"expert_{k}" in passed)
    table.add_row("all", "-", str(len(rows)), str(len(held)), "-", "-", "-", f"{rate('base', held):.1f}",
                  f"{rate('all_data', held):.1f}", f"{100 * routed / len(held):.1f}", f"{wins}/{clustering.k}")
    console = wide_console()
    console.print(table)
    console.print(f"training (all runs together on Ray Train): {train_s:.0f} s; whole benchmark {time.monotonic() - started:.0f} s")
    (Path(args.out) / "results.json").write_text(json.dumps(
        {"args": vars(args), "clusters": results, "routed_pass": 100 * routed / len(held),
         "all_data_pass": rate("all_data", held), "base_pass": rate("base", held), "train_s": train_s}, indent=2))


if __name__ == "__main__":
    main()
