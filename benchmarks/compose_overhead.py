"""Forward time of the composed rank-(E*r) LoRA vs the base model vs merging weights per request.

A batch of 8 problems, each with its own routing vector (8 different weight vectors), E=4 experts
of rank r=8, on a random Llama large enough to measure (hidden 512, 8 layers):

- base:      the plain base model, one forward over the batch (the floor);
- composed:  the composed model, one forward over the batch, each row with its own weights;
- merge:     for each request, fold its weights into the base weights (W + scale B diag(w) A
             for every adapted module), run that request alone; the base weights are restored
             at the end.

Two forwards are measured, because they behave differently on a CPU:
- prefill: the whole prompt (`--tokens` per request) in one forward;
- decode:  one new token per request over a KV cache of the prompt: the step generation repeats
           for every generated token, where a batch of 8 rows costs little more than one row.

The three methods run side by side in every repetition (interleaved, so machine load hits all
alike); medians are reported with the ratios. Targets: composed <= 1.25x base, merge >= 3x
composed.

    .venv/bin/python benchmarks/compose_overhead.py --repeats 15
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import support  # noqa: F401  (first: the repository on the path, offline settings)
import torch  # noqa: E402
from rich.table import Table  # noqa: E402

from bdc_ray.customize.composed_lora import merged_weight  # noqa: E402
from bdc_ray.customize.inject import ExpertStack, inject  # noqa: E402
from bdc_ray.console import wide_console  # noqa: E402

VOCAB = 1024


def build(hidden: int, layers: int, experts: int, rank: int, targets: list[str], seed: int):
    """(base model, composed model over a copy of it): random weights, random non-zero experts."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=hidden * 8 // 3 // 32 * 32,
                         num_hidden_layers=layers, num_attention_heads=8, num_key_value_heads=8,
                         max_position_embeddings=2048)
    base = LlamaForCausalLM(config).eval()
    modules = [n for n, m in base.named_modules() if n.rsplit(".", 1)[-1] in targets and isinstance(m, torch.nn.Linear)]
    a_cat, b_cat = {}, {}
    for name in modules:
        layer = base.get_submodule(name)
        a_cat[name] = torch.randn(experts * rank, layer.in_features) / layer.in_features**0.5
        b_cat[name] = torch.randn(layer.out_features, experts * rank) * 0.02
    stack = ExpertStack(names=[f"expert_{e}" for e in range(experts)], paths=[""] * experts, r=rank,
                        lora_alpha=2.0 * rank, lora_dropout=0.0, target_modules=targets, a_cat=a_cat, b_cat=b_cat,
                        adapter_config={})
    return base, inject(copy.deepcopy(base), stack)


class Merger:
    """Writes one request's merged weights into the base model's adapted modules; restores them."""

    def __init__(self, base, composed) -> None:
        self.targets = [(base.get_submodule(name), layer) for name, layer in composed.layers.items()]
        self.originals = [module.weight.detach().clone() for module, _ in self.targets]

    def merge(self, weights: torch.Tensor) -> None:
        for m, (module, layer) in enumerate(self.targets):
            module.weight.copy_(merged_weight(layer, weights[m]))

    def restore(self) -> None:
        for (module, _), original in zip(self.targets, self.originals):
            module.weight.copy_(original)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def prefill_methods(base, composed, merger, ids, weights):
    def merge_each():
        for i in range(ids.shape[0]):
            merger.merge(weights[i])
            base(input_ids=ids[i : i + 1])
        merger.restore()

    return {
        "base": lambda: base(input_ids=ids),
        "composed": lambda: composed(weights, input_ids=ids),
        "merge": merge_each,
    }


def decode_methods(base, composed, merger, ids, weights, repeats: int):
    """One decode step over the prompt's KV cache; caches are copied ahead (not timed), one per call."""
    step = torch.randint(0, VOCAB, (ids.shape[0], 1))
    base_cache = base(input_ids=ids, use_cache=True).cache
    composed_cache = composed(weights, input_ids=ids, use_cache=True).cache
    own_caches = []
    for i in range(ids.shape[0]):
        merger.merge(weights[i])
        own_caches.append(base(input_ids=ids[i : i + 1], use_cache=True).cache)
    merger.restore()
    pools = {
        "base": [copy.deepcopy(base_cache) for _ in range(repeats)],
        "composed": [copy.deepcopy(composed_cache) for _ in range(repeats)],
        "merge": [copy.deepcopy(own_caches) for _ in range(repeats)],
    }

    def merge_each():
        caches = pools["merge"].pop()
        for i in range(ids.shape[0]):
            merger.merge(weights[i])
            base(input_ids=step[i : i + 1], cache=caches[i], use_cache=True)
        merger.restore()

    return {
        "base": lambda: base(input_ids=step, cache=pools["base"].pop(), use_cache=True),
        "composed": lambda: composed(weights, input_ids=step, cache=pools["composed"].pop(), use_cache=True),
        "merge": merge_each,
    }


def measure(methods: dict, repeats: int) -> dict[str, list[float]]:
    runs: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            runs[name].append(timed(fn))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--experts", type=int, default=4)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128, help="Prompt length of every request.")
    parser.add_argument("--targets", default="q_proj,v_proj", help="Adapted modules (the experts stage's default).")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="Write the measurements as JSON here.")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    targets = args.targets.split(",")
    base, composed = build(args.hidden, args.layers, args.experts, args.rank, targets, seed=0)
    merger = Merger(base, composed)
    ids = torch.randint(0, VOCAB, (args.batch, args.tokens))
    weights = args.rank * torch.softmax(torch.randn(args.batch, len(composed.module_names), composed.entries) * 2, -1)
    results = {}
    with torch.inference_mode():
        # The composed pass computes what the merged models compute, row by row (checked once, not timed).
        merged = []
        for i in range(args.batch):
            merger.merge(weights[i])
            merged.append(base(input_ids=ids[i : i + 1]).logits)
        merger.restore()
        max_diff = (composed(weights, input_ids=ids).logits - torch.cat(merged)).abs().max().item()
        for scenario in ("prefill", "decode"):
            if scenario == "prefill":
                methods = prefill_methods(base, composed, merger, ids, weights)
            else:
                methods = decode_methods(base, composed, merger, ids, weights, args.repeats + 1)
            measure(methods, 1)  # warm-up
            runs = measure(methods, args.repeats)
            median = {k: statistics.median(v) for k, v in runs.items()}
            results[scenario] = {"runs": runs, "median": median, "overhead": median["composed"] / median["base"],
                                 "speedup": median["merge"] / median["composed"]}

    console = wide_console()
    table = Table(title=f"{args.batch} requests, {args.batch} different weight vectors, {args.tokens}-token prompts; "
                        f"E={args.experts}, r={args.rank}, hidden {args.hidden}, {args.layers} layers, {args.targets}; "
                        f"median of {args.repeats}, {args.threads} thread(s)")
    for col in ("forward", "method", "median ms", "min ms", "max ms", "vs base", "vs composed"):
        table.add_column(col, justify="left" if col in ("forward", "method") else "right")
    for scenario, res in results.items():
        for name in ("base", "composed", "merge"):
            m = res["median"]
            table.add_row(scenario, name, f"{1000 * m[name]:.1f}", f"{1000 * min(res['runs'][name]):.1f}",
                          f"{1000 * max(res['runs'][name]):.1f}", f"{m[name] / m['base']:.2f}x",
                          f"{m[name] / m['composed']:.2f}x")
    console.print(table)
    for scenario, res in results.items():
        console.print(
            f"{scenario}: composed / base = {res['overhead']:.3f}x (target <= 1.25x: "
            f"{'met' if res['overhead'] <= 1.25 else 'NOT met'}); merge per request / composed = "
            f"{res['speedup']:.2f}x (target >= 3x: {'met' if res['speedup'] >= 3 else 'NOT met'})"
        )
    console.print(f"max |composed - merged| logit over the batch: {max_diff:.2e}")
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results,
                                        "max_logit_diff": max_diff}, indent=2))


if __name__ == "__main__":
    main()
