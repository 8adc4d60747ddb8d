"""The vLLM engine over a stand-in for vLLM that loads every LoRARequest's folder with plain peft.

vLLM cannot be installed here (no CPU build), so `FakeVLLM` takes its place with vLLM's calling
convention (`LLM(**kwargs)`, `generate(prompts, sampling_params, lora_request=[...], use_tqdm=...)`,
`RequestOutput`-shaped results) and computes with what the engine hands it: the token ids, the
sampling arguments and the adapter folder of each row. Everything else is the real engine and
loader: routing, quantisation, the adapter cache, materialize, the app's event protocol.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from bdc_ray.llm.base import SamplingParams
from bdc_ray.serve.api import APIError
from bdc_ray.serve.config import ServeConfig
from bdc_ray.serve.engine import GenJob
from tests.serve.conftest import run_jobs

GREEDY = SamplingParams(max_new_tokens=120)


@dataclass(frozen=True)
class FakeLoRARequest:
    """vllm.lora.request.LoRARequest's positional arguments and its check of the id."""

    lora_name: str
    lora_int_id: int
    lora_path: str

    def __post_init__(self) -> None:
        assert self.lora_int_id >= 1, "vLLM refuses id 0"


class FakeVLLM:
    """`vllm.LLM`: greedy decoding of each row with its adapter folder loaded by peft (kept by int
    id, as vLLM caches adapters), the end-of-text token in token_ids but not in the text."""

    def __init__(self, **kwargs) -> None:
        from transformers import AutoTokenizer

        self.kwargs = kwargs
        self.tokenizer = AutoTokenizer.from_pretrained(kwargs["model"])
        self.loaded: dict[int, tuple[str, object]] = {}
        self.calls: list[list[tuple[dict, SimpleNamespace, FakeLoRARequest]]] = []
        self.fail_next = False

    def _model(self, lora: FakeLoRARequest):
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        if lora.lora_int_id not in self.loaded:
            base = AutoModelForCausalLM.from_pretrained(self.kwargs["model"])
            self.loaded[lora.lora_int_id] = (lora.lora_path, PeftModel.from_pretrained(base, lora.lora_path).eval())
        path, model = self.loaded[lora.lora_int_id]
        assert path == lora.lora_path, "an id vLLM caches came back with another folder"
        return model

    def generate(self, prompts, sampling_params, *, lora_request, use_tqdm):
        assert len(prompts) == len(sampling_params) == len(lora_request) and use_tqdm is False
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("CUDA out of memory (fake)")
        self.calls.append(list(zip(prompts, sampling_params, lora_request)))
        outputs = []
        for prompt, params, lora in zip(prompts, sampling_params, lora_request):
            assert Path(lora.lora_path, "adapter_config.json").is_file(), "the folder is there during the call"
            assert params.n == 1 and params.temperature == 0.0, "these tests decode greedily"
            ids = torch.tensor([prompt["prompt_token_ids"]])
            with torch.no_grad():
                row = self._model(lora).generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                                 max_new_tokens=params.max_tokens,
                                                 pad_token_id=self.tokenizer.pad_token_id)[0, ids.shape[1] :].tolist()
            eos = self.tokenizer.eos_token_id
            row = row[: row.index(eos) + 1] if eos in row else row
            reason = "stop" if row and row[-1] == eos else "length"
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            outputs.append(SimpleNamespace(prompt_token_ids=prompt["prompt_token_ids"], outputs=[
                SimpleNamespace(text=text, token_ids=row, finish_reason=reason)]))
        return outputs


def fake_api():
    return SimpleNamespace(LLM=FakeVLLM, SamplingParams=SimpleNamespace), FakeLoRARequest


def load(demo, tmp_path, **vllm):
    from bdc_ray.serve.app import deployed_artifacts
    from bdc_ray.serve.deploy_config import AppArgs
    from bdc_ray.serve.vllm_engine import load_vllm_engine

    settings = ServeConfig(engine="vllm", device="cpu", batching={"max_batch_size": 8},
                           vllm={"adapter_dir": str(tmp_path), "adapter_dtype": "float32", **vllm})
    base, paths = deployed_artifacts(AppArgs(hypernet=demo.hypernet, experts=demo.experts))
    return load_vllm_engine(demo.hypernet, base, paths, settings, vllm_api=fake_api())


@pytest.fixture(scope="module")
def vllm_engine(demo, tmp_path_factory):
    """The default quantisation step (0.01)."""
    return load(demo, tmp_path_factory.mktemp("adapters"))


def test_vllm_is_started_for_rank_e_times_r_with_the_sections_slots(vllm_engine, demo):
    kwargs = vllm_engine.llm.kwargs
    assert kwargs == {"model": kwargs["model"], "dtype": "auto", "enable_lora": True, "max_lora_rank": 8,
                      "max_loras": 4, "max_cpu_loras": 16}  # 2 experts x r=4; the section's defaults
    assert Path(kwargs["model"]) == Path(demo.base_model)
    assert vllm_engine.context == 256 and vllm_engine.expert_names == ["expert_0", "expert_1"]


def test_greedy_answers_are_the_transformers_engines(vllm_engine, engine, demo):
    """The demo's problems through both engines: the same programs, token for token, at the default step."""
    problems = [p.prompt for p in demo.problems[:4]]
    jobs = lambda: [GenJob.for_problem(p, 2, GREEDY) for p in problems]  # noqa: E731 - fresh cancel flags
    got, expected = run_jobs(vllm_engine, jobs()), run_jobs(engine, jobs())
    assert [o.texts for o in got] == [o.texts for o in expected]
    assert [o.finish_reasons for o in got] == [o.finish_reasons for o in expected] == [["stop", "stop"]] * 4
    assert [o.prompt_tokens for o in got] == [o.prompt_tokens for o in expected]


def test_each_problem_gets_its_adapter_and_a_repeated_problem_shares_it(vllm_engine, demo):
    before = vllm_engine.cache.snapshot()
    a, b = demo.problems[0].prompt, demo.problems[-1].prompt
    run_jobs(vllm_engine, [GenJob.for_problem(p, 1, SamplingParams(max_new_tokens=4)) for p in (a, b, a)])
    (call,) = vllm_engine.llm.calls[-1:]
    ids = [lora.lora_int_id for _, _, lora in call]
    assert ids[0] == ids[2] != ids[1], "one adapter per routing; the same problem routes the same"
    assert len({lora.lora_name for _, _, lora in call}) == 2
    after = vllm_engine.cache.snapshot()
    assert after["hits"] - before["hits"] >= 1 and after["on_disk"] <= after["capacity"]


def test_the_routing_summaries_are_the_transformers_engines(vllm_engine, engine, demo):
    problems = [demo.problems[0].prompt, demo.problems[-1].prompt]
    assert vllm_engine.routing(problems) == engine.routing(problems)


def test_streams_and_logprobs_are_refused_naming_the_engine(vllm_engine, engine):
    for stream, logprobs, field in ((True, False, "stream"), (False, True, "logprobs")):
        with pytest.raises(APIError) as err:
            vllm_engine.check_options(stream, logprobs)
        assert err.value.status == 400 and err.value.param == field
        assert "vllm engine" in str(err.value) and "serve.engine: vllm" in str(err.value)
        engine.check_options(stream, logprobs)  # the transformers engine serves both
    vllm_engine.check_options(False, False)


def test_a_cancelled_job_is_not_generated(vllm_engine, demo):
    calls = len(vllm_engine.llm.calls)
    gone = GenJob.for_problem(demo.problems[0].prompt, 1, GREEDY)
    gone.cancel.set()
    assert run_jobs(vllm_engine, [gone])[0].finish_reasons == ["cancelled"]
    assert len(vllm_engine.llm.calls) == calls and vllm_engine.stats_snapshot()["cancelled_rows"] >= 1


def test_a_failed_call_fails_its_requests_and_the_engine_goes_on(vllm_engine, demo):
    vllm_engine.llm.fail_next = True
    job = lambda: GenJob.for_problem(demo.problems[1].prompt, 1, SamplingParams(max_new_tokens=4))  # noqa: E731
    with pytest.raises(RuntimeError, match="out of memory"):
        run_jobs(vllm_engine, [job()])
    assert run_jobs(vllm_engine, [job()])[0].finish_reasons == ["length"]


def test_exact_weights_without_quantisation(demo, tmp_path):
    exact = load(demo, tmp_path, quant_step=0.0)
    problem = demo.problems[2].prompt
    [out] = run_jobs(exact, [GenJob.for_problem(problem, 1, GREEDY)])
    assert out.finish_reasons == ["stop"] and out.texts[0]
    (_, _, lora), = exact.llm.calls[-1]
    routed = exact.router.weights([problem])[0]
    import json

    folded = torch.tensor(json.loads(Path(lora.lora_path, "bdc_routing.json").read_text())["weights"])
    torch.testing.assert_close(folded, routed, atol=0, rtol=0)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_choosing_vllm_without_vllm_fails_with_the_install_hint(demo):
    """The replica's start, without Ray Serve: a clear setup error, not an ImportError traceback."""
    from bdc_ray.serve import ServeSetupError
    from bdc_ray.serve.app import load_engine
    from bdc_ray.serve.deploy_config import AppArgs

    args = AppArgs(hypernet=demo.hypernet, experts=demo.experts, settings={"engine": "vllm"})
    with pytest.raises(ServeSetupError) as err:
        load_engine(args)
    message = str(err.value)
    assert message.startswith("serve.engine is 'vllm', but this replica cannot import vLLM")
    assert "pip install 'bdc-ray[vllm]'" in message and "on CPU use backend 'transformers'" in message
    assert err.value.__cause__ is None and err.value.__suppress_context__
