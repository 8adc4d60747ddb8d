"""The experts' scaling section becomes the ScalingConfig every run uses, and a GPU asked for
without use_gpu fails at start-up with its key path (Ray refuses it only when the run starts)."""

from __future__ import annotations

import pytest

from bdc_ray.config import ConfigError, parse_config
from bdc_ray.disentangle.expert_config import ScalingSection
from bdc_ray.disentangle.experts import scaling_config


def test_scaling_config_carries_gpus_and_the_node_type_resource():
    scaling = scaling_config(
        ScalingSection(num_workers=2, use_gpu=True, resources_per_worker={"CPU": 4, "GPU": 1, "gpu_node": 0.01})
    )
    assert scaling.num_workers == 2 and scaling.use_gpu
    assert (scaling.num_cpus_per_worker, scaling.num_gpus_per_worker) == (4, 1)
    assert scaling.additional_resources_per_worker == {"gpu_node": 0.01}
    cpu = scaling_config(ScalingSection(num_workers=1, resources_per_worker={"CPU": 1}))
    assert not cpu.use_gpu and (cpu.num_cpus_per_worker, cpu.num_gpus_per_worker) == (1, 0)


def test_a_gpu_without_use_gpu_fails_with_its_path():
    scaling = {"use_gpu": False, "resources_per_worker": {"CPU": 4, "GPU": 1}}
    with pytest.raises(ConfigError, match=r"stages\.disentangle\.experts\.scaling: .*set use_gpu: true"):
        parse_config({"stages": {"disentangle": {"experts": {"scaling": scaling}}}})


def test_the_torch_backend_is_ray_trains_choice_unless_named():
    assert ScalingSection().torch_backend is None  # Ray: NCCL for GPU workers, gloo otherwise
    assert ScalingSection(use_gpu=True, torch_backend="gloo").torch_backend == "gloo"  # GPUs only declared
    with pytest.raises(ConfigError, match=r"stages\.disentangle\.experts\.scaling\.torch_backend"):
        parse_config({"stages": {"disentangle": {"experts": {"scaling": {"torch_backend": "mpi"}}}}})


def test_deepspeed_zero_options_are_checked_by_deepspeeds_schema_with_their_path():
    from bdc_ray.disentangle.expert_config import ExpertsConfig
    from bdc_ray.disentangle.expert_worker import deepspeed_config

    gpu = ExpertsConfig(zero_stage=3, zero={"overlap_comm": True, "offload_param": {"device": "cpu"}})
    assert deepspeed_config(gpu, world=2)["zero_optimization"] == {
        "stage": 3, "overlap_comm": True, "offload_param": {"device": "cpu"}}
    with pytest.raises(ConfigError, match=r"stages\.disentangle\.experts\.zero: .*overlap_com: Extra inputs"):
        parse_config({"stages": {"disentangle": {"experts": {"zero": {"overlap_com": True}}}}})
    with pytest.raises(ConfigError, match=r"stages\.disentangle\.experts\.zero: .*zero_stage"):
        parse_config({"stages": {"disentangle": {"experts": {"zero": {"stage": 3}}}}})
    with pytest.raises(ConfigError, match="validation_share needs whole parameters"):
        parse_config({"stages": {"disentangle": {"experts": {"zero_stage": 3, "validation_share": 0.1}}}})
