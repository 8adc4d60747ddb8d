"""The Tune section asks for what a trial needs, GPUs and node-type resources included, and
refuses at start-up what Ray would refuse (or silently misread) only when the search starts."""

from __future__ import annotations

import pytest

from bdc_ray.config import ConfigError, parse_config
from bdc_ray.customize.config import TuneSection


def test_trial_resources_hold_cpus_gpus_and_the_node_type_resource():
    section = TuneSection(cpus_per_trial=4, gpus_per_trial=1, custom_resources_per_trial={"gpu_node": 0.01})
    assert section.trial_resources() == {"cpu": 4.0, "gpu": 1.0, "gpu_node": 0.01}
    assert TuneSection().trial_resources() == {"cpu": 1.0, "gpu": 0.0}  # the CPU default, unchanged


def test_the_tuner_asks_for_the_trial_resources():
    """tune.with_resources turns the dict into the trial's placement group: GPU and gpu_node included."""
    from ray import tune

    section = TuneSection(cpus_per_trial=4, gpus_per_trial=1, custom_resources_per_trial={"gpu_node": 0.01})
    trainable = tune.with_resources(lambda config: None, section.trial_resources())
    bundles = trainable._resources.bundles
    assert bundles == [{"CPU": 4.0, "GPU": 1.0, "gpu_node": 0.01}]


@pytest.mark.parametrize(
    ("search", "path", "message"),
    [
        ({"gpus_per_trial": -1}, "stages.customize.search.gpus_per_trial", "greater than or equal to 0"),
        ({"custom_resources_per_trial": {"gpu_node": -0.1}}, "stages.customize.search.custom_resources_per_trial",
         ">= 0"),
        ({"custom_resources_per_trial": {"GPU": 1}}, "stages.customize.search.custom_resources_per_trial",
         "gpus_per_trial"),
        ({"gpu_per_trial": 1}, "stages.customize.search.gpu_per_trial", "unknown key"),
    ],
)
def test_bad_trial_resources_fail_with_their_key_path(search, path, message):
    with pytest.raises(ConfigError) as err:
        parse_config({"stages": {"customize": {"search": search}}})
    line = next(line for line in str(err.value).splitlines() if line.strip().startswith(path))
    assert message in line, str(err.value)
