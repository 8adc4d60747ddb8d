"""Tokens/s of one agent actor at 1, 4 and 16 concurrent callers vs sequential calls, in one run.

Every caller sends one greedy request at a time (a synthetic-suite prompt, as the tree search
does); the actor's batching window coalesces what arrives together into one backend call.

    .venv/bin/python benchmarks/agent_batching.py --model runs/models/<tiny folder> --requests 48
"""

from __future__ import annotations

import argparse
import asyncio
import time

import support  # noqa: F401  (first: the repository on the path, offline settings)
import ray  # noqa: E402
from rich.table import Table  # noqa: E402

from bdc_ray.console import wide_console  # noqa: E402
from bdc_ray.llm.actors import agenerate, start_llm_actor  # noqa: E402
from bdc_ray.llm.base import SamplingParams  # noqa: E402
from bdc_ray.llm.spec import BackendSpec  # noqa: E402
from bdc_ray.problems.synth import SynthConfig, format_prompt, generate_suite  # noqa: E402


async def _callers(actor, prompts: list[str], concurrency: int, sampling: SamplingParams) -> int:
    queue = list(prompts)
    tokens = 0

    async def caller() -> None:
        nonlocal tokens
        while queue:
            prompt = queue.pop()
            _, stats = await agenerate(actor, [prompt], sampling)
            tokens += stats.completion_tokens

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="A model folder (e.g. a tiny model built by bdc models build-tiny).")
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    ray.init(address="local", num_cpus=max(2, args.threads), include_dashboard=False, log_to_driver=False)
    suite = generate_suite(SynthConfig(seed=7, train_per_family=0, heldout_per_family=args.requests // 6 + 1, heldout_comp_per_family=0))
    prompts = [format_prompt(p) for p in suite.heldout][: args.requests]
    sampling = SamplingParams(max_new_tokens=args.max_new_tokens)
    spec = BackendSpec(backend="transformers", path=args.model, threads=args.threads, max_batch_size=16)
    actor = start_llm_actor(spec, {"num_cpus": args.threads}, window_s=0.02)
    ray.get(actor.ready.remote())
    asyncio.run(_callers(actor, prompts[:4], 2, sampling))  # warm-up

    rows = []
    for label, concurrency in (("sequential", 1), ("1 caller", 1), ("4 callers", 4), ("16 callers", 16)):
        started = time.perf_counter()
        if label == "sequential":
            tokens = 0
            for p in prompts:
                _, stats = ray.get(actor.generate.remote([p], sampling.model_dump()))
                tokens += stats["completion_tokens"]
        else:
            tokens = asyncio.run(_callers(actor, prompts, concurrency, sampling))
        elapsed = time.perf_counter() - started
        rows.append((label, tokens, elapsed, tokens / elapsed))
    base = rows[0][3]
    table = Table(title=f"Agent actor throughput ({len(prompts)} greedy requests, {args.threads} thread(s))")
    for col in ("callers", "tokens", "seconds", "tokens/s", "vs sequential"):
        table.add_column(col, justify="right")
    for label, tokens, elapsed, tps in rows:
        table.add_row(label, str(tokens), f"{elapsed:.1f}", f"{tps:.0f}", f"{tps / base:.2f}x")
    wide_console().print(table)
    print(ray.get(actor.stats.remote()))
    ray.shutdown()


if __name__ == "__main__":
    main()
