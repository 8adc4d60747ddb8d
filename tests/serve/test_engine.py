"""The engine on the real demo solver, without Ray: batches as one decode, splitting, streaming, routing text."""

import asyncio
import time

import pytest

from bdc_ray.llm.base import SamplingParams
from bdc_ray.problems.synth import format_prompt, format_target
from bdc_ray.serve.api import APIError
from bdc_ray.serve.engine import GenJob, job_rows, routing_text_of
from tests.serve.conftest import run_jobs

GREEDY = SamplingParams(max_new_tokens=60)


def test_routing_text_is_the_statement_inside_a_training_prompt(demo):
    problem = demo.problems[0]
    assert routing_text_of(format_prompt(problem)) == problem.prompt
    assert routing_text_of(format_prompt(problem) + "# a thought\n") == problem.prompt
    assert routing_text_of("def f(x):") == "def f(x):"
    assert routing_text_of("### Task\nno solution header") == "### Task\nno solution header"


def test_rows_splitting_and_choices():
    greedy = GenJob.make("p", "p", 5, GREEDY)
    sampled = GenJob.make("p", "p", 5, SamplingParams(temperature=1.0, max_new_tokens=8, seed=4))
    assert greedy.rows == 1 and sampled.rows == 5 and job_rows([greedy, sampled]) == 6
    assert greedy.split(2) == [greedy] and list(greedy.choices(0)) == [0, 1, 2, 3, 4]
    parts = sampled.split(2)
    assert [(j.n, j.first_sample) for j in parts] == [(2, 0), (2, 2), (1, 4)] and sampled.sampling.n == 1
    assert [list(j.choices(j.first_sample)) for j in parts] == [[0], [2], [4]]
    assert all(j.cancel is sampled.cancel for j in parts)  # the client's going away stops every part
    # A sample's seed is its own: the same in a part as in the whole job, different between samples.
    assert parts[1].row_seed(3) == sampled.row_seed(3) != sampled.row_seed(2)
    assert greedy.row_seed(0) is None


def test_a_batch_of_problems_is_one_decode_and_equals_each_alone(engine, demo):
    jobs = [GenJob.for_problem(p.prompt, n, GREEDY.model_copy(update={"max_new_tokens": 120}))
            for p, n in zip(demo.problems, [1, 2, 1, 3, 1, 1])]
    calls = engine.stats.calls
    together = run_jobs(engine, jobs)
    assert engine.stats.calls == calls + 1 and engine.stats.max_rows >= len(jobs)
    assert [o.texts for o in together] == [[format_target(p)] * n for p, n in zip(demo.problems, [1, 2, 1, 3, 1, 1])]
    assert [o.texts for o in together] == [run_jobs(engine, [j])[0].texts for j in jobs]
    assert all(o.prompt_tokens > 0 and o.completion_tokens > 0 for o in together)
    assert all(o.finish_reasons == ["stop"] * len(o.texts) for o in together)  # each reached end-of-text


def test_different_settings_share_one_decode(engine, demo):
    short = GenJob.for_problem(demo.problems[0].prompt, 1, SamplingParams(max_new_tokens=5))
    long = GenJob.for_problem(demo.problems[1].prompt, 1, SamplingParams(max_new_tokens=50))
    sampled = GenJob.for_problem(demo.problems[2].prompt, 3, SamplingParams(temperature=1.0, max_new_tokens=20))
    calls = engine.stats.calls
    outputs = run_jobs(engine, [short, long, sampled])
    assert engine.stats.calls == calls + 1
    assert len(outputs[2].texts) == 3
    assert engine.count_tokens(outputs[0].texts[0]) <= 5
    # the short job ran out of room: every new token used, no end-of-text reached
    assert outputs[0].finish_reasons == ["length"] and outputs[0].completion_tokens == 5


def test_astream_hands_each_job_its_events_then_stops_it(engine, demo):
    jobs = [GenJob.for_problem(demo.problems[0].prompt, 1, SamplingParams(max_new_tokens=4)),
            GenJob.for_problem(demo.problems[1].prompt, 1, SamplingParams(max_new_tokens=60))]

    async def drain():
        return [item async for item in engine.astream(jobs)]

    items = asyncio.run(drain())
    assert all(len(item) == 2 for item in items)
    short = [e for item in items if item[0] is not StopIteration for e in item[0]]
    assert "".join(e.text for e in short) == short[-1].done.text and short[-1].done.tokens == 4
    ended = next(i for i, item in enumerate(items) if item[0] is StopIteration)
    assert all(item[0] is StopIteration for item in items[ended:])  # once ended, a job stays ended
    long = [e for item in items if item[1] is not StopIteration for e in item[1]]
    assert long[-1].done.finish_reason == "stop" and "".join(e.text for e in long) == long[-1].done.text


def test_a_cancelled_job_is_recorded_with_its_request(engine, demo):
    job = GenJob.for_problem(demo.problems[0].prompt, 1, GREEDY, request_id="cmpl-test")
    job.cancel.set()
    before = engine.stats_snapshot()["cancelled_rows"]
    assert run_jobs(engine, [job])[0].finish_reasons == ["cancelled"]
    stats = engine.stats_snapshot()
    assert stats["cancelled_rows"] == before + 1
    assert stats["recent_cancelled"][-1] == {"request": "cmpl-test", "sample": 0, "tokens": 0, "tokens_after_cancel": 0,
                                             "group_rows": 1, "others_running": 0}


def test_a_cancelled_job_of_a_group_is_recorded_with_its_own_request(engine, demo):
    """Requests of one serve.batch batch are one group: the record names the job whose row left, not the first."""
    kept = GenJob.for_problem(demo.problems[0].prompt, 1, SamplingParams(max_new_tokens=8), request_id="cmpl-kept")
    gone = GenJob.for_problem(demo.problems[1].prompt, 1, GREEDY, request_id="cmpl-gone")
    gone.cancel.set()
    outputs = run_jobs(engine, [kept, gone])
    assert [o.finish_reasons for o in outputs][1] == ["cancelled"]
    recorded = engine.stats_snapshot()["recent_cancelled"][-1]
    assert (recorded["request"], recorded["group_rows"]) == ("cmpl-gone", 2)


def _long_and_short(demo):
    long = GenJob.make("word " * 20, "word", 1, SamplingParams(max_new_tokens=150))
    short = GenJob.for_problem(demo.problems[1].prompt, 1, SamplingParams(max_new_tokens=60))
    return long, short


def _submit_second_after_first_tokens(engine, first, second):
    """`second` is submitted from the decode thread once `first` has produced five tokens."""
    import threading

    order, finished, seen = [], threading.Event(), {"events": 0}

    def on_first(events):
        seen["events"] += len(events)
        if seen["events"] == 5:
            engine.submit([second], lambda _: None, lambda err: order.append("second"))

    def first_done(err):
        order.append("first")
        finished.set()

    engine.submit([first], on_first, first_done)
    finished.wait(120)
    return order


def test_a_group_arriving_mid_decode_joins_the_running_batch(engine, demo):
    long, short = _long_and_short(demo)
    joined = engine.stats_snapshot()["joined_running"]
    assert _submit_second_after_first_tokens(engine, long, short) == ["second", "first"]  # it did not wait
    assert engine.stats_snapshot()["joined_running"] == joined + 1


def test_without_joining_groups_decode_one_after_the_other(demo):
    from bdc_ray.customize.solver import load_customized
    from bdc_ray.serve.engine import Engine

    alone = Engine(load_customized(demo.hypernet, threads=1), join=False)
    long, short = _long_and_short(demo)
    order = _submit_second_after_first_tokens(alone, long, short)
    for _ in range(600):  # the second group starts only now
        if len(order) == 2:
            break
        time.sleep(0.05)
    assert order == ["first", "second"] and alone.stats_snapshot()["joined_running"] == 0


def test_prompts_beyond_the_context_are_refused_before_batching(engine):
    assert engine.context == 256
    engine.check_fits("short", 100)
    with pytest.raises(APIError, match="exceeds the model's context of 256"):
        engine.check_fits("word " * 300, 10)
    assert engine.room("### Task\nx\n### Solution\n") < 256


def test_routing_summaries(engine, demo):
    first, last = engine.routing([demo.problems[0].prompt, demo.problems[-1].prompt])
    assert [e.name for e in first.experts] == ["expert_0", "expert_1"]
    assert abs(sum(e.weight for e in first.experts) - 1) < 1e-6
    assert list(first.per_module) == engine.solver.composed.module_names
    assert first.experts != last.experts


def test_deployed_artifacts_must_match(demo, tmp_path):
    """The experts manifest must name every expert the hypernetwork mixes (a mismatched folder fails at start)."""
    from bdc_ray.artifacts.experts import load_manifest, save_manifest
    from bdc_ray.serve.app import load_engine
    from bdc_ray.serve.deploy_config import AppArgs

    manifest = load_manifest(demo.experts)
    manifest.experts = manifest.experts[:1]
    save_manifest(manifest, str(tmp_path))
    with pytest.raises(ValueError, match=r"no entry for \['expert_1'\]"):
        load_engine(AppArgs(hypernet=demo.hypernet, experts=str(tmp_path)))
    loaded = load_engine(AppArgs(hypernet=demo.hypernet, experts=demo.experts))
    assert loaded.expert_names == ["expert_0", "expert_1"] and loaded.context == 256
