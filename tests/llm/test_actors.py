"""Agent actors on a real local Ray cluster with the session's tiny model."""

import asyncio

import ray

from bdc_ray.llm.actors import agenerate, start_llm_actor
from bdc_ray.llm.base import SamplingParams
from bdc_ray.llm.spec import BackendSpec


def test_sixteen_concurrent_callers_each_get_their_own_result(ray_local, tiny_model, hf_llm):
    spec = BackendSpec(backend="transformers", path=tiny_model.path, threads=1)
    actor = start_llm_actor(spec, {"num_cpus": 1}, window_s=0.05)
    greedy = SamplingParams(max_new_tokens=10)
    prompts = [f"def {op}_{k}(x):\n" for op in ("add", "sub") for k in range(1, 9)]
    expected = [hf_llm.generate([p], greedy)[0][0] for p in prompts]

    async def main():
        return await asyncio.gather(*(agenerate(actor, [p], greedy) for p in prompts))

    results = asyncio.run(main())
    assert [texts[0][0] for texts, _ in results] == expected
    stats = ray.get(actor.stats.remote())
    assert stats["requests"] == 16 and stats["backend_calls"] < 16
    ray.kill(actor)
