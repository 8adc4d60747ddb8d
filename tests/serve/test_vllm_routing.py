"""What the vLLM engine would ask of vLLM, checked without vLLM: quantised keys, the adapter LRU, the
requests, the engine arguments, and that the folded adapter vLLM would load is the composed model."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from bdc_ray.llm.base import SamplingParams
from bdc_ray.serve.config import VLLMSection
from bdc_ray.serve.engine import GenJob
from bdc_ray.serve.vllm_routing import Adapter, AdapterCache, build_requests, completion_of, llm_kwargs, quantise
from tests.customize.conftest import R, load_base, random_experts, tiny_base  # noqa: F401 - fixtures

STEP = 0.01


def test_weights_within_a_grid_cell_share_a_key_and_others_do_not():
    torch.manual_seed(0)
    w = 4 * torch.softmax(torch.randn(6, 12), dim=-1)
    cell = torch.round(w / STEP) * STEP  # the grid point every weight rounds to
    key, folded = quantise(w, STEP)
    torch.testing.assert_close(folded, cell)
    assert (folded - w).abs().max() <= STEP / 2 + 1e-7
    nudged = cell + (torch.rand_like(w) - 0.5) * 0.8 * STEP  # anywhere in the same cells
    assert quantise(nudged, STEP)[0] == key
    moved = cell.clone()
    moved[3, 7] += STEP  # one weight one cell over
    assert quantise(moved, STEP)[0] != key
    assert quantise(w, STEP / 2)[0] != key, "the step is part of the key"
    assert quantise(w.view(12, 6), STEP)[0] != key, "so is the shape"


def test_step_zero_keys_the_exact_weights():
    w = torch.full((2, 4), 0.25)
    key, folded = quantise(w, 0.0)
    assert folded.equal(w) and quantise(w.clone(), 0.0)[0] == key
    assert quantise(w + 1e-6, 0.0)[0] != key


def _writer(log: list | None = None, delay: float = 0.0):
    def write(weights: torch.Tensor, folder: Path) -> None:
        time.sleep(delay)
        folder.mkdir(parents=True)
        (folder / "weights.txt").write_text(repr(weights.tolist()))
        if log is not None:
            log.append(folder)

    return write


def _item(value: float) -> tuple[str, torch.Tensor]:
    return quantise(torch.full((1, 2), value), STEP)


def test_the_lru_is_bounded_and_eviction_deletes_folders(tmp_path):
    written: list[Path] = []
    cache = AdapterCache(tmp_path / "cache", 2, _writer(written))
    with cache.lease([_item(0.1)]) as (a,):
        pass
    with cache.lease([_item(0.2)]) as (b,):
        pass
    with cache.lease([_item(0.1)]) as (again,):  # a hit: 0.1 is now the most recent
        assert again is a
    with cache.lease([_item(0.3)]) as (c,):
        pass
    assert len(cache) == 2 and not b.path.exists() and a.path.exists() and c.path.exists()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([a.path.name, c.path.name])
    assert cache.snapshot() == {"on_disk": 2, "capacity": 2, "hits": 1, "misses": 3, "evicted": 1,
                                "write_seconds": cache.snapshot()["write_seconds"]}
    assert (a.request_args, b.request_args[1], c.request_args[1]) == (("bdc-1", 1, str(a.path)), 2, 3)


def test_an_evicted_key_comes_back_under_a_new_id_and_folder(tmp_path):
    cache = AdapterCache(tmp_path, 1, _writer())
    with cache.lease([_item(0.1)]) as (first,):
        pass
    with cache.lease([_item(0.2)]):
        pass
    with cache.lease([_item(0.1)]) as (back,):
        assert back.lora_id == 3 and back.path != first.path and back.path.exists()
    assert not first.path.exists()


def test_leased_folders_are_never_evicted(tmp_path):
    """A call's adapters stay on disk until it returns, even beyond capacity (vLLM reads them then)."""
    cache = AdapterCache(tmp_path, 1, _writer())
    with cache.lease([_item(0.1), _item(0.2), _item(0.3)]) as adapters:
        assert all(a.path.exists() for a in adapters) and len(cache) == 3
    assert len(cache) == 1 and [a.path.exists() for a in adapters] == [False, False, True]


def test_a_failed_fold_leaves_nothing_and_is_retried(tmp_path):
    calls = []

    def flaky(weights, folder):
        calls.append(folder)
        folder.mkdir()
        if len(calls) == 1:
            raise OSError("disk full")

    cache = AdapterCache(tmp_path, 2, flaky)
    with pytest.raises(RuntimeError, match="disk full"), cache.lease([_item(0.1)]):
        pass
    assert len(cache) == 0 and not calls[0].exists()
    with cache.lease([_item(0.1)]) as (adapter,):
        assert adapter.lora_id == 2 and adapter.path.exists()


def test_concurrent_leases_fold_each_key_once_and_never_mix_ids(tmp_path):
    written: list[Path] = []
    cache = AdapterCache(tmp_path / "cache", 3, _writer(written, delay=0.002))
    values = [0.1 * i for i in range(1, 7)]
    seen: dict[int, str] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(40):
                chosen = rng.sample(values, 2)
                with cache.lease([_item(v) for v in chosen]) as adapters:
                    for v, adapter in zip(chosen, adapters):
                        # The folder a lease holds is there, and holds its own weights.
                        assert (adapter.path / "weights.txt").read_text() == repr(_item(v)[1].tolist())
                        with lock:
                            assert seen.setdefault(adapter.lora_id, adapter.key) == adapter.key
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=client, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    stats = cache.snapshot()
    assert stats["misses"] == len(written) == len(seen), "every fold got its own id, each id one key"
    assert stats["hits"] + stats["misses"] == 6 * 40 * 2
    assert len(cache) <= 3 and len(list((tmp_path / "cache").iterdir())) == len(cache)


def _adapter(lora_id: int) -> Adapter:
    return Adapter(f"key{lora_id}", lora_id, Path(f"/adapters/{lora_id}"))


def test_each_row_gets_its_jobs_adapter_and_its_own_seed():
    greedy = GenJob.make("p0", "problem 0", 3, SamplingParams(max_new_tokens=20))
    sampled = GenJob.make("p1", "problem 1", 2, SamplingParams(temperature=0.7, top_p=0.9, seed=5, stop=["\n\n"]))
    part = GenJob.make("p1", "problem 1", 4, SamplingParams(temperature=0.7, seed=5)).split(2)[1]
    requests = build_requests([greedy, sampled, part], [[1, 2], [3], [3]], [_adapter(7), _adapter(8), _adapter(8)])
    assert [(r.job, r.sample, r.lora) for r in requests] == [
        (0, 0, ("bdc-7", 7, "/adapters/7")),  # greedy: one row stands for all 3 samples
        (1, 0, ("bdc-8", 8, "/adapters/8")), (1, 1, ("bdc-8", 8, "/adapters/8")),
        (2, 2, ("bdc-8", 8, "/adapters/8")), (2, 3, ("bdc-8", 8, "/adapters/8")),  # the second half of n=4
    ]
    assert requests[0].prompt == {"prompt_token_ids": [1, 2]}
    assert requests[0].sampling == {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 20, "stop": None, "seed": None}
    assert [r.sampling["seed"] for r in requests[1:]] == [sampled.row_seed(0), sampled.row_seed(1),
                                                          sampled.row_seed(2), sampled.row_seed(3)]
    assert len({r.sampling["seed"] for r in requests[1:]}) == 4 and requests[1].sampling["stop"] == ["\n\n"]
    with pytest.raises(ValueError, match="2 jobs, 1 prompts"):
        build_requests([greedy, sampled], [[1]], [_adapter(1)])


@pytest.mark.parametrize(("entries", "rank"), [(2 * 4, 8), (3 * 4, 16), (4 * 16, 64), (6 * 16, 128), (8 * 64, 512)])
def test_the_engine_is_sized_for_rank_e_times_r(entries, rank):
    section = VLLMSection(max_loras=2, max_cpu_loras=6, dtype="bfloat16", engine_args={"gpu_memory_utilization": 0.8})
    assert llm_kwargs("/models/base", entries, section) == {
        "model": "/models/base", "dtype": "bfloat16", "enable_lora": True, "max_lora_rank": rank, "max_loras": 2,
        "max_cpu_loras": 6, "gpu_memory_utilization": 0.8,
    }


def test_too_many_ranks_for_vllm_fail_at_start():
    with pytest.raises(ValueError, match="exceeds vLLM's largest max_lora_rank 512"):
        llm_kwargs("/models/base", 9 * 64, VLLMSection())


def test_a_request_output_becomes_a_completion():
    def output(text, tokens, reason):
        return SimpleNamespace(outputs=[SimpleNamespace(text=text, token_ids=list(range(tokens)), finish_reason=reason)])

    assert completion_of(output("return x\n\nprint", 5, "stop"), ["\n\n"]).text == "return x"
    cut = completion_of(output("abc", 4, "length"), [])
    assert (cut.text, cut.tokens, cut.finish_reason) == ("abc", 4, "length")


def test_the_folded_adapter_vllm_would_load_is_the_composed_model_with_the_quantised_weights(
    tiny_base, random_experts, tmp_path  # noqa: F811 - fixtures
):
    """What a LoRARequest points vLLM at, loaded by plain peft: the composed model's logits under the
    request's quantised weights (to 1e-5, float32), and within the stated bound of the exact ones."""
    from peft import PeftModel

    from bdc_ray.customize import materialize
    from bdc_ray.customize.inject import inject, load_experts

    composed = inject(load_base(tiny_base), load_experts(random_experts))
    torch.manual_seed(11)
    exact = R * torch.softmax(2 * torch.randn(len(composed.module_names), composed.entries), dim=-1)
    tok = tiny_base.tokenizer
    tok.padding_side = "left"
    batch = tok(["### Task\nSum the values of xs.", "### Task\nReverse"], return_tensors="pt", padding=True,
                return_token_type_ids=False)

    def logits(weights: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return composed(weights.expand(2, -1, -1), **batch).logits

    cache = AdapterCache(tmp_path, 2, lambda w, folder: materialize(composed.experts, composed.module_names, w, folder))
    key, folded = quantise(exact, STEP)
    with cache.lease([(key, folded)]) as (adapter,):
        name, lora_id, path = adapter.request_args
        with torch.no_grad():
            loaded = PeftModel.from_pretrained(load_base(tiny_base), path).eval()(**batch).logits
    torch.testing.assert_close(loaded, logits(folded), atol=1e-5, rtol=0)

    # The bound of docs/design-choices.md, layer by layer: |q - w| <= step/2 per weight, so
    # |scale B diag(q - w) A h| <= scale * step/2 * ||B||_2 * |A h| for every input h.
    error = folded - exact
    assert error.abs().max() <= STEP / 2 + 1e-7
    for i, layer in enumerate(composed.layers.values()):
        h = torch.randn(16, layer.a_cat.shape[1])
        ah = h @ layer.a_cat.T
        change = layer.scale * (ah * error[i]) @ layer.b_cat.T
        bound = layer.scale * STEP / 2 * torch.linalg.matrix_norm(layer.b_cat, 2) * ah.norm(dim=-1)
        assert (change.norm(dim=-1) <= bound * (1 + 1e-5)).all()

    # Measured on this model (E=3, r=4, 2 layers x 3 targets, random strong experts; logits up to 0.89):
    # the largest logit change is 0.138 / 0.016 / 0.0016 at steps 0.1 / 0.01 / 0.001 (linear in the
    # step), where routing uniformly instead moves them by 0.55 and the base model by 1.08.
    moved = {step: float((logits(quantise(exact, step)[1]) - logits(exact)).abs().max()) for step in (0.1, STEP, 0.001)}
    assert moved[0.1] > 5 * moved[STEP] > 25 * moved[0.001], moved
    spread = float((logits(composed.uniform(1)) - logits(exact)).abs().max())
    assert moved[STEP] < spread / 20, (moved, spread)  # far below what the routing itself changes
