"""Samples/s of one LoRA expert trained through Ray Train vs the same loop in one plain process.

Both train the same tiny base (the config's first agent, built or reused under models.build_root)
on the same SFT rows (the synthetic suite's train split, the run's data seed) for the same
optimizer steps on ONE torch thread: the plain run calls `lora_train.train_plain` in a fresh process,
the Ray run goes through `experts.train_experts` (TorchTrainer, one worker holding one CPU, its
checkpoint reported at the end). The two alternate in every repetition, so machine load hits
both alike; medians are reported.

Steady state is samples per second of the training loop itself (model loading, tokenization and,
for Ray, worker start-up excluded); start-up is reported separately: for Ray the whole `fit()`
wall minus its loop, for the plain run loading and tokenizing. Target: Ray Train overhead <= 10%
at steady state.

    .venv/bin/python benchmarks/train_overhead.py --steps 150 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from support import ROOT, first_tiny_base  # first: the repository on the path, offline settings

from rich.table import Table  # noqa: E402

from bdc_ray.config import load_config  # noqa: E402
from bdc_ray.disentangle.expert_config import ExpertsConfig  # noqa: E402
from bdc_ray.artifacts.sft import problem_rows, prompt_response  # noqa: E402
from bdc_ray.console import wide_console  # noqa: E402
from bdc_ray.training import encode_pairs, model_context  # noqa: E402
from bdc_ray.problems.synth import generate_suite  # noqa: E402


def plain_run(base: str, rows: list[dict], cfg: ExpertsConfig) -> dict:
    """In a fresh spawned process: a plain process, without the Ray driver's threads beside the loop."""
    import multiprocessing

    # The thread environment Ray gives a worker holding one CPU, so only Ray itself differs.
    os.environ["OMP_NUM_THREADS"] = "1"
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_plain_in_process, (base, rows, cfg))


def _plain_in_process(base: str, rows: list[dict], cfg: ExpertsConfig) -> dict:
    import torch
    from transformers import AutoConfig, AutoTokenizer

    from bdc_ray.disentangle.lora_train import train_plain

    torch.set_num_threads(1)
    started = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(base)
    context = model_context(tokenizer, AutoConfig.from_pretrained(base), cfg.context)
    examples = encode_pairs(tokenizer, [prompt_response(r) for r in rows], context)
    run = train_plain(base, examples, tokenizer.pad_token_id, cfg)
    wall = time.monotonic() - started
    return {"samples_per_s": run.state.samples / run.seconds, "startup_s": wall - run.seconds, "loss": run.state.final_loss}


def ray_run(base: str, rows: list[dict], cfg: ExpertsConfig) -> dict:
    import numpy as np

    from bdc_ray.disentangle.experts import train_experts

    with tempfile.TemporaryDirectory(prefix="bdc-train-overhead-") as out:
        started = time.monotonic()
        manifest = train_experts({}, rows, np.zeros((0, 1)), base, cfg, out, progress=False)
        wall = time.monotonic() - started
    entry = manifest.all_data
    return {"samples_per_s": entry.samples_per_s, "startup_s": wall - entry.train_s, "loss": entry.final_loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "ray_config.yaml"))
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--micro-batch-tokens", type=int, default=2048)
    parser.add_argument("--rows-per-family", type=int, default=200)
    parser.add_argument("--deepspeed", action="store_true", help="The Ray run through DeepSpeed (ZeRO-2) instead of plain torch.")
    parser.add_argument("--json", help="Also write the figures to this JSON file.")
    args = parser.parse_args()

    import ray

    bdc = load_config(args.config)
    base = first_tiny_base(bdc)
    synth = bdc.data.synthetic.model_copy(update={"train_per_family": args.rows_per_family})
    rows = problem_rows(generate_suite(synth).train)
    cfg = ExpertsConfig(
        steps=args.steps,
        checkpoint_every=args.steps,
        micro_batch_tokens=args.micro_batch_tokens,
        deepspeed=args.deepspeed,
        verify_adapter=False,
        scaling={"num_workers": 1, "resources_per_worker": {"CPU": 1.0}, "max_failures": 0},
    )
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results: dict[str, list[dict]] = {"plain": [], "ray": []}
        for repeat in range(args.repeats):
            for name, fn in (("plain", plain_run), ("ray", ray_run)):
                results[name].append(fn(base, rows, cfg))
                print(f"repeat {repeat + 1}/{args.repeats} {name}: {results[name][-1]}", flush=True)
    finally:
        ray.shutdown()

    median = {name: {k: statistics.median(r[k] for r in runs) for k in ("samples_per_s", "startup_s")} for name, runs in results.items()}
    # Each repetition's two runs ran back to back under about the same load: their ratio is the
    # robust figure on a shared machine; the spread says how much the load moved.
    paired = [r["samples_per_s"] / p["samples_per_s"] for p, r in zip(results["plain"], results["ray"])]
    ratio = statistics.median(paired)
    table = Table(title=f"one expert, {args.steps} steps x {args.micro_batch_tokens} tokens, 1 thread, {len(rows)} rows "
                        f"(synthetic train split), median of {args.repeats}")
    for col in ("run", "samples/s (steady)", "start-up s", "final loss"):
        table.add_column(col, justify="right")
    for name, label in (("plain", "plain process"), ("ray", "Ray Train" + (" + DeepSpeed" if args.deepspeed else ""))):
        table.add_row(label, f"{median[name]['samples_per_s']:.1f}", f"{median[name]['startup_s']:.1f}",
                      f"{results[name][-1]['loss']:.4f}")
    console = wide_console()
    console.print(table)
    console.print(
        f"Ray/plain steady-state ratio {ratio:.3f} (median of paired repetitions; range {min(paired):.3f}-"
        f"{max(paired):.3f}); overhead {100 * (1 - ratio):.1f}%, target <= 10%"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"median": median, "ratio": ratio, "paired": paired, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
