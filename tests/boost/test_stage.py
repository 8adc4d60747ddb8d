"""Which problems a Boost stage searches when it may not search them all, and which traces it resumes."""

import pytest

from bdc_ray import storage
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.boost.stage import StaleTracesError, claim_traces, first_per_group, search_settings
from bdc_ray.config import BDCConfig, load_config
from bdc_ray.problems.synth import SynthConfig, generate_suite


def test_a_limited_stage_takes_every_family_in_turn():
    train = generate_suite(SynthConfig(train_per_family=5, heldout_per_family=0, heldout_comp_per_family=0)).train
    chosen = first_per_group(train, 8)
    families = [p.family for p in chosen]
    assert families[:6] == ["arith", "string", "list", "count", "branch", "io"]  # the suite's family order
    assert families[6:] == ["arith", "string"]
    assert [p.id for p in chosen if p.family == "arith"] == [p.id for p in train if p.family == "arith"][:2]
    assert first_per_group(train, None) == train and first_per_group(train, 1000) == train


def settings_of(cfg: BDCConfig) -> dict:
    return search_settings(cfg.models.agents, cfg.stages.boost.search)


def test_traces_resume_only_under_the_settings_that_searched_them(tmp_path):
    out = RunLayout(str(tmp_path))
    default = load_config()
    claim_traces(out, settings_of(default))
    recorded = storage.read_text(out.boost_settings)
    # how fast it searches is not what it finds: more concurrency and other resources resume
    faster = load_config(overrides={"stages": {"boost": {"max_concurrent_problems": 32}},
                                    "models": {"agents": [{**a.model_dump(mode="json"), "replicas": 2}
                                                          for a in default.models.agents]}})
    claim_traces(out, settings_of(faster))
    wider = load_config(overrides={"stages": {"boost": {"search": {"width": 3}}}})
    with pytest.raises(StaleTracesError, match=r"other search parameters .*another run_name"):
        claim_traces(out, settings_of(wider))
    one_agent = load_config(overrides={"models": {"agents": [default.models.agents[0].model_dump(mode="json")]}})
    with pytest.raises(StaleTracesError, match="with other agents "):
        claim_traces(out, settings_of(one_agent))
    assert storage.read_text(out.boost_settings) == recorded  # nothing overwritten
