"""The batching window against the real transformers backend on the session's tiny model, and the
concurrency of sampling groups against a latency-bound backend."""

import asyncio

import pytest

from bdc_ray.llm.base import GenerationStats, SamplingParams
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


# --- concurrency of sampling groups, against a latency-bound backend (real asyncio, no model) ---


class LatencyLLM:
    """A backend whose every call takes `latency_s` of waiting (an HTTP round trip), records
    how many calls were in flight at once, and can fail one group."""

    name = "latency"

    def __init__(self, latency_s: float = 0.02, fail_temperature: float | None = None):
        self.latency_s = latency_s
        self.fail_temperature = fail_temperature
        self.calls: list[tuple[str, list[str]]] = []
        self.now = self.peak = 0

    async def agenerate_with_stats(self, prompts, sampling, adapter=None):
        self.calls.append((sampling.model_dump_json(), list(prompts)))
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(self.latency_s)
            if sampling.temperature == self.fail_temperature:
                raise RuntimeError(f"group at T={sampling.temperature} failed")
        finally:
            self.now -= 1
        texts = [[f"{p}|{adapter}|T{sampling.temperature}|{i}" for i in range(sampling.n)] for p in prompts]
        return texts, GenerationStats(prompt_tokens=len(prompts), completion_tokens=len(prompts) * sampling.n, seconds=self.latency_s)


GROUPS = [(SamplingParams(n=1 + g % 2, temperature=0.1 * g), f"adapter-{g % 2}") for g in range(6)]


async def _mixed(batcher: Batcher, per_group: int = 5):
    requests = [(f"p{g}-{k}", sampling, adapter) for k in range(per_group) for g, (sampling, adapter) in enumerate(GROUPS)]
    results = await asyncio.gather(*(batcher.generate([p], s, a) for p, s, a in requests))
    return requests, results


def test_sampling_groups_run_concurrently_and_every_caller_gets_its_own_texts():
    llm = LatencyLLM()

    async def main():
        batcher = Batcher(llm, window_s=0.005, max_concurrent_calls=8)
        return batcher, await _mixed(batcher)

    batcher, (requests, results) = asyncio.run(main())
    for (prompt, sampling, adapter), (texts, stats) in zip(requests, results):
        assert texts == [[f"{prompt}|{adapter}|T{sampling.temperature}|{i}" for i in range(sampling.n)]]
        assert stats.completion_tokens == sampling.n
    assert all(len({p.split("-")[0] for p in prompts}) == 1 for _, prompts in llm.calls)  # groups never mixed
    assert llm.peak > 1  # different groups' calls overlapped
    assert batcher.stats.requests == len(requests) and batcher.stats.prompts == len(requests)
    assert batcher.stats.backend_calls == len(llm.calls) < len(requests)  # still coalesced within a group
    # busy time is wall time with a call in flight, not the sum of overlapping calls
    assert batcher.stats.busy_s < batcher.stats.call_s


def test_concurrent_calls_are_bounded():
    llm = LatencyLLM()

    async def main():
        return await _mixed(Batcher(llm, window_s=0.005, max_concurrent_calls=2))

    asyncio.run(main())
    assert llm.peak == 2


def test_the_default_follows_what_the_backend_serves_at_once(hf_llm):
    assert Batcher(hf_llm).max_concurrent_calls == 1  # one forward pass at a time (its lock)
    http = LatencyLLM()
    http.max_concurrency = 6  # as OpenAICompatibleLLM declares its HTTP requests in flight
    assert Batcher(http).max_concurrent_calls == 6 and Batcher(http, max_concurrent_calls=2).max_concurrent_calls == 2
    with pytest.raises(ValueError, match="at least 1"):
        Batcher(http, max_concurrent_calls=0)

    llm = LatencyLLM()
    asyncio.run(_mixed(Batcher(llm, window_s=0.005)))
    assert llm.peak == 1  # a backend that declares nothing gets one call at a time


def test_while_every_slot_is_busy_requests_queue_into_one_batch():
    llm = LatencyLLM(latency_s=0.05)
    sampling = SamplingParams(n=2, temperature=0.7)

    async def main():
        batcher = Batcher(llm, window_s=0.0, max_concurrent_calls=1)
        first = asyncio.ensure_future(batcher.generate(["a"], sampling))
        while not llm.calls:  # the first call is in flight
            await asyncio.sleep(0)
        later = [batcher.generate([f"b{k}"], sampling) for k in range(5)]
        return batcher, await asyncio.gather(first, *later)

    batcher, results = asyncio.run(main())
    assert [prompts for _, prompts in llm.calls] == [["a"], ["b0", "b1", "b2", "b3", "b4"]]
    assert [texts[0][1] for texts, _ in results] == ["a|None|T0.7|1"] + [f"b{k}|None|T0.7|1" for k in range(5)]


def test_max_prompts_splits_a_group_into_calls_of_whole_requests():
    llm = LatencyLLM()
    sampling = SamplingParams()

    async def main():
        batcher = Batcher(llm, window_s=0.05, max_prompts=4)
        return await asyncio.gather(*(batcher.generate([f"q{k}a", f"q{k}b", f"q{k}c"], sampling) for k in range(3)))

    results = asyncio.run(main())
    assert [len(prompts) for _, prompts in llm.calls] == [3, 3, 3]  # 3 + 3 > 4: never a request split
    assert [texts[2][0] for texts, _ in results] == [f"q{k}c|None|T0.0|0" for k in range(3)]


def test_a_failed_group_fails_its_callers_only():
    llm = LatencyLLM(fail_temperature=0.2)

    async def main():
        batcher = Batcher(llm, window_s=0.005, max_concurrent_calls=4)
        requests = [(f"p{g}-{k}", s, a) for k in range(3) for g, (s, a) in enumerate(GROUPS)]
        got = await asyncio.gather(*(batcher.generate([p], s, a) for p, s, a in requests), return_exceptions=True)
        return requests, got

    requests, got = asyncio.run(main())
    assert llm.peak > 1
    for (prompt, sampling, _), result in zip(requests, got):
        if sampling.temperature == 0.2:
            assert isinstance(result, RuntimeError) and "T=0.2 failed" in str(result)
        else:
            assert result[0][0][0].startswith(prompt + "|")
