"""The batching window against the real transformers backend on the session's tiny model."""

import asyncio

from bdc_ray.llm.base import SamplingParams
from bdc_ray.llm.batcher import Batcher


def test_concurrent_callers_are_batched_and_get_their_own_results(hf_llm):
    greedy = SamplingParams(max_new_tokens=12)
    prompts = [f"def add_{k}(x):\n" for k in range(1, 9)] + [f"def mul_{k}(y):\n" for k in range(1, 9)]
    alone = [hf_llm.generate([p], greedy)[0] for p in prompts]

    async def main():
        batcher = Batcher(hf_llm, window_s=0.05)
        results = await asyncio.gather(*(batcher.generate([p], greedy) for p in prompts))
        return batcher, results

    batcher, results = asyncio.run(main())
    assert [texts[0] for texts, _ in results] == alone
    assert batcher.stats.requests == 16
    assert batcher.stats.backend_calls < 16  # coalesced
    assert all(stats.completion_tokens > 0 for _, stats in results)


def test_different_sampling_settings_are_not_mixed(hf_llm):
    a = SamplingParams(max_new_tokens=6)
    b = SamplingParams(max_new_tokens=6, n=3, temperature=0.9, seed=1)

    async def main():
        batcher = Batcher(hf_llm, window_s=0.05)
        return await asyncio.gather(batcher.generate(["def f(x):\n"], a), batcher.generate(["def g(x):\n"], b))

    (ta, _), (tb, _) = asyncio.run(main())
    assert len(ta) == 1 and len(ta[0]) == 1
    assert len(tb) == 1 and len(tb[0]) == 3


def test_a_failing_backend_call_reaches_every_caller():
    class Broken:
        name = "broken"

        async def agenerate_with_stats(self, prompts, sampling, adapter=None):
            raise RuntimeError("model exploded")

    async def main():
        batcher = Batcher(Broken(), window_s=0.01)
        return await asyncio.gather(
            *(batcher.generate(["p"], SamplingParams()) for _ in range(3)), return_exceptions=True
        )

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in results)
