"""The agent batcher with mixed sampling groups: concurrent groups vs one call at a time, in one run.

Boost sends every agent requests with several sampling settings at once (thoughts: n=width,
short, stop at the newline; programs and continuations: n=n_sim, long), and each setting is a
separate batching group. `Batcher(max_concurrent_calls=1)` runs one backend call at a time, as
the batcher did before groups got their own tasks; `--concurrent` (4) runs that many calls at
once (the Batcher's default follows the backend: 1 for transformers, the declared
`max_concurrency` of an OpenAI-compatible backend). Both serve the same closed-loop workload
side by side (rounds alternate, so load from other processes hits both alike): `--callers`
callers each send `--requests` requests, cycling through the groups, each waiting for its answer
and then pausing (`--think`, its programs running in the sandbox) before sending the next, as a
tree search does.

Two backends:
  latency  a backend whose every call waits `--latency` seconds and computes nothing: the round
           trip of an OpenAI-compatible server or a vLLM endpoint, without its compute;
  tiny     the real transformers backend on a tiny model (one forward pass at a time: its lock),
           on synthetic-suite prompts: compute-bound, where concurrency can only let groups queue.

    .venv/bin/python benchmarks/batcher_groups.py --model runs/models/tiny-a-<hash>
    .venv/bin/python benchmarks/batcher_groups.py --backends latency --latency 0.3 --concurrent 8
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP workers sleep instead of spinning on shared cores

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bdc_ray.llm.base import BaseLLM, GenerationStats, SamplingParams, Texts  # noqa: E402
from bdc_ray.llm.batcher import Batcher  # noqa: E402


class LatencyLLM(BaseLLM):
    """Every call waits `latency_s` (an endpoint's round trip) and returns placeholder texts."""

    name = "latency"

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s

    def _reply(self, prompts: list[str], sampling: SamplingParams) -> tuple[Texts, GenerationStats]:
        texts = [["x"] * sampling.n for _ in prompts]
        return texts, GenerationStats(prompt_tokens=len(prompts), completion_tokens=len(prompts) * sampling.n,
                                      seconds=self.latency_s)

    def generate_with_stats(self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None
                            ) -> tuple[Texts, GenerationStats]:
        time.sleep(self.latency_s)
        return self._reply(prompts, sampling)

    async def agenerate_with_stats(self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None
                                   ) -> tuple[Texts, GenerationStats]:
        await asyncio.sleep(self.latency_s)
        return self._reply(prompts, sampling)


def groups(args: argparse.Namespace) -> list[SamplingParams]:
    """Boost's sampling settings for one agent: thoughts, programs / continuations, and a third width."""
    return [
        SamplingParams(n=args.width, temperature=0.8, max_new_tokens=args.thought_tokens, stop=["\n"]),
        SamplingParams(n=args.n_sim, temperature=0.8, max_new_tokens=args.code_tokens, stop=["### Task"]),
        SamplingParams(n=args.width + 1, temperature=0.8, max_new_tokens=args.code_tokens, stop=["### Task"]),
        SamplingParams(n=1, temperature=1.0, max_new_tokens=args.thought_tokens, stop=["\n"]),
    ][: args.groups]


def suite_prompts(count: int) -> list[str]:
    from bdc_ray.problems.synth import SynthConfig, format_prompt, generate_suite

    per_family = max(1, count // 6 + 1)
    suite = generate_suite(SynthConfig(seed=11, train_per_family=per_family, heldout_per_family=0, heldout_comp_per_family=0))
    return [format_prompt(p) for p in suite.train][:count]


async def closed_loop(batcher: Batcher, prompts: list[str], settings: list[SamplingParams], callers: int,
                      requests: int, think_s: float) -> dict[str, Any]:
    async def caller(c: int) -> None:
        pauses = random.Random(c)  # the same pauses in every mode
        for k in range(requests):
            sampling = settings[(c + k) % len(settings)]
            await batcher.generate([prompts[(c * requests + k) % len(prompts)]], sampling)
            if think_s:
                await asyncio.sleep(pauses.expovariate(1 / think_s))

    started = time.perf_counter()
    await asyncio.gather(*(caller(c) for c in range(callers)))
    wall = time.perf_counter() - started
    s = batcher.stats
    return {"wall_s": wall, "requests": s.requests, "requests_per_s": s.requests / wall, "backend_calls": s.backend_calls,
            "requests_per_call": s.requests / s.backend_calls, "busy_fraction": s.busy_s / wall,
            "mean_calls_in_flight": s.call_s / s.busy_s if s.busy_s else 0.0, "completion_tokens": s.tokens.completion_tokens}


def measure(llm, prompts, args, concurrent_calls: int) -> dict[str, Any]:
    batcher = Batcher(llm, window_s=args.window_ms / 1000, max_concurrent_calls=concurrent_calls)
    return asyncio.run(closed_loop(batcher, prompts, groups(args), args.callers, args.requests, args.think))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="latency,tiny", help="latency, tiny or both.")
    parser.add_argument("--model", default=None, help="Tiny model folder for the tiny backend (a `bdc models build-tiny` output).")
    parser.add_argument("--latency", type=float, default=0.3, help="Seconds per call of the latency backend.")
    parser.add_argument("--callers", type=int, default=16, help="Concurrent callers (problems in flight x agents' jobs).")
    parser.add_argument("--requests", type=int, default=12, help="Requests per caller per measurement.")
    parser.add_argument("--think", type=float, default=0.1,
                        help="Mean seconds a caller pauses between requests (exponential; its programs run in the sandbox).")
    parser.add_argument("--groups", type=int, default=3, choices=[1, 2, 3, 4], help="Distinct sampling settings.")
    parser.add_argument("--concurrent", type=int, default=4, help="max_concurrent_calls of the concurrent mode.")
    parser.add_argument("--rounds", type=int, default=2, help="Alternating rounds of serial and concurrent.")
    parser.add_argument("--width", type=int, default=2)
    parser.add_argument("--n-sim", type=int, default=2)
    parser.add_argument("--thought-tokens", type=int, default=24)
    parser.add_argument("--code-tokens", type=int, default=96)
    parser.add_argument("--window-ms", type=float, default=10.0)
    parser.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "batcher_groups.json"))
    args = parser.parse_args()

    backends = {}
    for name in args.backends.split(","):
        if name == "latency":
            backends[name] = LatencyLLM(args.latency)
        elif name == "tiny":
            if not args.model:
                raise SystemExit("--model is needed for the tiny backend (or --backends latency)")
            from bdc_ray.llm.hf_backend import TransformersLLM

            backends[name] = TransformersLLM(args.model, device="cpu", threads=1, max_batch_size=16)
        else:
            raise SystemExit(f"unknown backend {name!r}")
    prompts = suite_prompts(args.callers * args.requests)
    rows = []
    for name, llm in backends.items():
        for r in range(args.rounds):
            for label, calls in (("one call at a time", 1), (f"groups concurrent (<= {args.concurrent})", args.concurrent)):
                result = measure(llm, prompts, args, calls)
                rows.append({"backend": name, "round": r + 1, "mode": label, "max_concurrent_calls": calls, **result})
                print(f"[{name} #{r + 1}] {label}: {result['requests_per_s']:.2f} requests/s, "
                      f"{result['requests_per_call']:.1f} requests/call, {result['mean_calls_in_flight']:.2f} calls in flight",
                      flush=True)

    from rich.table import Table

    from bdc_ray.console import wide_console

    table = Table(title=f"Batcher, {args.groups} sampling groups, {args.callers} closed-loop callers x {args.requests} requests "
                        f"(ratio: requests/s vs one call at a time, totals over {args.rounds} rounds)")
    for col in ("backend", "mode", "requests/s", "ratio", "requests/call", "calls in flight", "busy", "per round"):
        table.add_column(col, justify="left" if col in ("backend", "mode") else "right")
    summary = {}
    for name in backends:
        mine = [r for r in rows if r["backend"] == name]
        rate = {}
        for calls in (1, args.concurrent):
            runs = [r for r in mine if r["max_concurrent_calls"] == calls]
            rate[calls] = sum(r["requests"] for r in runs) / sum(r["wall_s"] for r in runs)
        summary[name] = {"serial_requests_per_s": rate[1], "concurrent_requests_per_s": rate[args.concurrent],
                         "ratio": rate[args.concurrent] / rate[1]}
        for calls in (1, args.concurrent):
            runs = [r for r in mine if r["max_concurrent_calls"] == calls]
            table.add_row(name, runs[0]["mode"], f"{rate[calls]:.2f}", f"{rate[calls] / rate[1]:.2f}x",
                          f"{sum(r['requests_per_call'] for r in runs) / len(runs):.1f}",
                          f"{sum(r['mean_calls_in_flight'] for r in runs) / len(runs):.2f}",
                          f"{sum(r['busy_fraction'] for r in runs) / len(runs):.0%}",
                          ", ".join(f"{r['requests_per_s']:.2f}" for r in runs))
    wide_console().print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join([Path(sys.executable).name, *sys.argv]), "args": vars(args),
                               "loadavg_1m": os.getloadavg()[0], "summary": summary, "rows": rows}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
