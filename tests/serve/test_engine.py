"""The engine on the real demo solver, without Ray: grouping into forward passes, splitting, routing text."""

import pytest

from bdc_ray.llm.base import SamplingParams
from bdc_ray.problems.synth import format_prompt, format_target
from bdc_ray.serve.api import APIError
from bdc_ray.serve.engine import GenJob, job_rows, routing_text_of

GREEDY = SamplingParams(max_new_tokens=60)


def test_routing_text_is_the_statement_inside_a_training_prompt(demo):
    problem = demo.problems[0]
    assert routing_text_of(format_prompt(problem)) == problem.prompt
    assert routing_text_of(format_prompt(problem) + "# a thought\n") == problem.prompt
    assert routing_text_of("def f(x):") == "def f(x):"
    assert routing_text_of("### Task\nno solution header") == "### Task\nno solution header"


def test_rows_and_splitting():
    greedy = GenJob.make("p", "p", 5, GREEDY)
    sampled = GenJob.make("p", "p", 5, SamplingParams(temperature=1.0, max_new_tokens=8))
    assert greedy.rows == 1 and sampled.rows == 5 and job_rows([greedy, sampled]) == 6
    assert greedy.split(2) == [greedy]
    assert [j.n for j in sampled.split(2)] == [2, 2, 1] and sampled.sampling.n == 1
    assert greedy.group == GenJob.make("q", "q", 1, GREEDY).group
    seeded = SamplingParams(temperature=1.0, max_new_tokens=8, seed=1)
    assert GenJob.make("p", "p", 1, seeded).group != GenJob.make("p", "p", 1, seeded).group


def test_a_batch_of_problems_is_one_call_and_equals_each_alone(engine, demo):
    jobs = [GenJob.for_problem(p.prompt, n, GREEDY.model_copy(update={"max_new_tokens": 120}))
            for p, n in zip(demo.problems, [1, 2, 1, 3, 1, 1])]
    calls = engine.stats.calls
    together = engine.run(jobs)
    assert engine.stats.calls == calls + 1 and engine.stats.max_rows >= len(jobs)
    assert [o.texts for o in together] == [[format_target(p)] * n for p, n in zip(demo.problems, [1, 2, 1, 3, 1, 1])]
    assert [o.texts for o in together] == [engine.run([j])[0].texts for j in jobs]
    assert all(o.prompt_tokens > 0 and o.completion_tokens > 0 for o in together)
    assert all(o.finish_reasons == ["stop"] * len(o.texts) for o in together)  # each reached end-of-text


def test_different_settings_are_different_passes(engine, demo):
    short = GenJob.for_problem(demo.problems[0].prompt, 1, SamplingParams(max_new_tokens=5))
    long = GenJob.for_problem(demo.problems[1].prompt, 1, SamplingParams(max_new_tokens=50))
    sampled = GenJob.for_problem(demo.problems[2].prompt, 3, SamplingParams(temperature=1.0, max_new_tokens=20))
    calls = engine.stats.calls
    outputs = engine.run([short, long, sampled])
    assert engine.stats.calls == calls + 3
    assert len(outputs[2].texts) == 3
    assert engine.count_tokens(outputs[0].texts[0]) <= 5
    # the short job ran out of room: every new token used, no end-of-text reached
    assert outputs[0].finish_reasons == ["length"] and outputs[0].completion_tokens == 5


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
