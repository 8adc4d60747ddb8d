"""cluster/ray_config.yaml through the real schema and through what every stage does with its
section at start-up: the student the experts adapt, the agents' backends, the experts' Ray Train
ScalingConfig and DeepSpeed config, the Tune search and its trial resources, the held-out sampling,
the Serve deploy config. Each request must fit a node type of cluster/aws.yaml (the launcher
tests check the same requests against gcp.yaml and the KubeRay groups), and the GPU pool
aws.yaml allows must hold what runs at once.

Nothing here starts Ray or loads a model: these are the resolutions that, read wrongly, fail a
cluster run after the autoscaler has started (and billed) its nodes.
"""

from __future__ import annotations

import pytest
import torch

from bdc_ray.config import ConfigError, load_config
from bdc_ray.models import student_model
from bdc_ray.models.resolve import resolve_backends
from bdc_ray.training import choose_device, choose_dtype
from tests.cluster.conftest import CLUSTER, assert_stages_pinned, stage_requests
from bdc_ray.plan import Throughput, build_plan, read_cluster_file
from bdc_ray.plan import launcher_node_types as node_types
from bdc_ray.resources import ResourceSpec
from tests.cluster.test_launcher_configs import load

STUDENT = "Qwen/Qwen2.5-Coder-7B"


@pytest.fixture(scope="module")
def aws() -> dict:
    return load("aws.yaml")


def test_the_experts_adapt_the_7b_student_not_a_teacher(cluster_config):
    """What the pipeline's Disentangle stage resolves as the base model (pipeline.disentangle_stage)."""
    section = cluster_config.stages.disentangle
    base = section.experts.base_model or student_model(cluster_config.models)
    assert base == STUDENT
    student = cluster_config.models.student.model
    assert (student.backend, student.dtype) == ("transformers", "bfloat16")
    assert base not in {a.model.path for a in cluster_config.models.agents}, "the student must not be a teacher"


def test_the_agents_resolve_to_vllm_backends_without_a_build(cluster_config):
    specs = resolve_backends(cluster_config.models.agents, cluster_config.models.build_root)
    assert {name: (s.backend, s.dtype) for name, s in specs.items()} == {
        "qwen-coder-7b": ("vllm", "bfloat16"),
        "deepseek-coder-6.7b": ("vllm", "bfloat16"),
    }


def test_expert_runs_train_on_gpu_workers_in_bf16(cluster_config):
    from bdc_ray.disentangle.expert_worker import deepspeed_config
    from bdc_ray.disentangle.experts import scaling_config

    experts = cluster_config.stages.disentangle.experts
    scaling = scaling_config(experts.scaling)  # Ray validates the resources against use_gpu here
    assert scaling.use_gpu and scaling.num_gpus_per_worker == 1
    assert scaling.additional_resources_per_worker == {"gpu_node": 0.01}
    ds = deepspeed_config(experts, world=experts.scaling.num_workers)
    assert ds["bf16"] == {"enabled": True}
    # ZeRO-2 with the GPU knobs (overlapped, bucketed communication), as DeepSpeed's own schema reads it.
    from deepspeed.runtime.zero.config import DeepSpeedZeroConfig

    zero = DeepSpeedZeroConfig(**ds["zero_optimization"])
    assert zero.stage == 2 and zero.overlap_comm and zero.contiguous_gradients
    assert zero.reduce_bucket_size == zero.allgather_bucket_size == 200_000_000
    # A worker holding its GPU (Ray Train's get_device: cuda) loads the frozen 7B base in bf16.
    device = choose_device("auto", cuda_available=True, gpus_held=1.0)
    assert choose_dtype(device, experts.dtype, bf16_supported=True) is torch.bfloat16


def test_tune_trials_hold_a_gpu_on_a_gpu_node(cluster_config):
    from bdc_ray.customize.tune import evaluation_rounds, search_space

    customize = cluster_config.stages.customize
    assert customize.tune, "the cluster run searches the hypernetwork's settings with Ray Tune"
    assert customize.search.trial_resources() == {"cpu": 4.0, "gpu": 1.0, "gpu_node": 0.01}
    assert stage_requests(cluster_config)["tune trial"].model_dump() == {
        "num_cpus": 4.0, "num_gpus": 1.0, "resources": {"gpu_node": 0.01}
    }
    space = search_space(customize.search)
    assert {"lr", "hidden", "temperature", "layers"} <= set(space)
    assert evaluation_rounds(customize.train) == 11
    assert customize.search.num_samples >= 16


def test_held_out_generation_and_serve_replicas_run_on_gpu_nodes(cluster_config):
    from bdc_ray.serve.deploy_config import AppArgs, serve_deploy_config

    requests = stage_requests(cluster_config)
    for stage in ("held-out generation", "serve replica"):
        assert requests[stage].num_gpus == 1 and requests[stage].resources == {"gpu_node": 0.01}, stage
    eval_section = cluster_config.stages.eval
    assert eval_section.samples >= max(eval_section.k), "pass@k needs k samples"
    deploy = serve_deploy_config(AppArgs(hypernet=cluster_config.layout.hypernet_dir, settings=cluster_config.serve))
    (deployment,) = deploy["applications"][0]["deployments"]
    assert deployment["ray_actor_options"]["resources"] == {"gpu_node": 0.01}


def test_serve_replicas_run_vllm_sized_for_the_experts(cluster_config):
    """What a replica passes to vllm.LLM (vllm_routing.llm_kwargs, as load_vllm_engine does) for the
    fewest and the most experts the silhouette may choose: the LoRA rank E*r fits vLLM's ranks."""
    from bdc_ray.serve.vllm_routing import llm_kwargs

    serve = cluster_config.serve
    assert (serve.engine, serve.device) == ("vllm", "cpu"), "vLLM generates on the GPU, the hypernetwork routes on the CPU"
    clusters, lora = cluster_config.stages.disentangle.cluster, cluster_config.stages.disentangle.experts.lora
    ranks = {k: llm_kwargs(STUDENT, k * lora.r, serve.vllm)["max_lora_rank"] for k in (clusters.k_min, clusters.k_max)}
    assert ranks == {4: 32, 12: 128}
    assert llm_kwargs(STUDENT, clusters.k_max * lora.r, serve.vllm) == {
        "model": STUDENT, "dtype": "bfloat16", "enable_lora": True, "max_lora_rank": 128, "max_loras": 8,
        "max_cpu_loras": 32, "gpu_memory_utilization": 0.85, "max_model_len": 8192,
    }
    assert cluster_config.models.student.model.dtype == serve.vllm.dtype
    # One generate call's adapters all stay on disk, and vLLM can reload any adapter it holds.
    assert serve.vllm.max_adapters_on_disk >= max(serve.batching.max_batch_size, serve.vllm.max_cpu_loras)


def test_every_request_fits_a_node_type_of_aws(cluster_config, aws):
    assert_stages_pinned(node_types(aws), cluster_config)


def test_what_runs_at_once_fits_the_gpu_pool(cluster_config, aws):
    gpu_nodes = aws["available_node_types"]["gpu"]["max_workers"]
    gpus_per_node = aws["available_node_types"]["gpu"]["resources"]["GPU"]
    pool = gpu_nodes * gpus_per_node
    agents = sum(a.replicas * a.resources.num_gpus for a in cluster_config.models.agents)
    scaling = cluster_config.stages.disentangle.experts.scaling
    experts = scaling.max_concurrent_runs * scaling.num_workers * scaling.resources_per_worker["GPU"]
    search = cluster_config.stages.customize.search
    trials = search.max_concurrent_trials * search.gpus_per_trial
    serve = cluster_config.serve.autoscaling.max_replicas * cluster_config.serve.resources.num_gpus
    # Stages run one after another; each one alone must fit the GPUs aws.yaml may start.
    assert {"boost agents": agents, "expert runs": experts, "tune trials": trials, "serve": serve} == {
        "boost agents": pool, "expert runs": pool, "tune trials": pool, "serve": 4
    }
    assert scaling.max_concurrent_runs is not None, "scaled to zero, 'what fits now' would train one expert at a time"


def test_a_request_no_node_type_offers_is_caught(cluster_config, aws):
    """The fit check can fail: two GPUs per trial fit no g5.2xlarge."""
    greedy = cluster_config.model_copy(deep=True)
    greedy.stages.customize.search.gpus_per_trial = 2
    with pytest.raises(AssertionError, match="tune trial: no node type offers"):
        assert_stages_pinned(node_types(aws), greedy)


@pytest.mark.parametrize("stage", ["held-out generation", "serve replica"])
def test_a_gpu_stage_that_lost_its_gpu_is_caught(cluster_config, aws, stage):
    """Without its GPU and gpu_node pin a 7B generation task would fit the CPU nodes too."""
    unpinned = cluster_config.model_copy(deep=True)
    section = unpinned.stages.eval.resources if stage == "held-out generation" else unpinned.serve.resources
    section.num_gpus, section.resources = 0, {}
    with pytest.raises(AssertionError, match=f"{stage} may land on a CPU node"):
        assert_stages_pinned(node_types(aws), unpinned)


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"stages": {"customize": {"search": {"gpu_per_trial": 1}}}}, "stages.customize.search.gpu_per_trial"),
        ({"models": {"student": {"model": {"dtyp": "bfloat16"}}}}, "models.student.model.dtyp"),
        ({"stages": {"disentangle": {"experts": {"scaling": {"gpus": 1}}}}}, "stages.disentangle.experts.scaling.gpus"),
        ({"serve": {"vllm": {"max_lora": 8}}}, "serve.vllm.max_lora"),
    ],
)
def test_an_unknown_key_in_the_cluster_config_fails_with_its_path(overrides, path):
    with pytest.raises(ConfigError) as err:
        load_config(CLUSTER / "ray_config.yaml", overrides=overrides)
    assert f"  {path}: unknown key" in str(err.value).splitlines(), str(err.value)


def test_bdc_plan_asks_for_what_the_stages_ask_for(cluster_config):
    """`bdc plan` reads each request off its section without Ray; the stages build theirs with
    Ray's own functions (stage_requests). The two must agree, request by request."""
    plan = build_plan(cluster_config, "cluster/ray_config.yaml", read_cluster_file(CLUSTER / "aws.yaml"), Throughput())
    planned = {row.what: ResourceSpec.from_bundle(row.each) for stage in plan.stages for row in stage.demands}
    resolved = stage_requests(cluster_config)
    same = {"sandbox actor (rewards)": "sandbox", "Ray Train worker of an expert run": "expert train worker",
            "Ray Tune trial": "tune trial", "held-out generation task": "held-out generation",
            "Serve replica": "serve replica"}
    same |= {f"replica of agent {a.name}": f"agent {a.name}" for a in cluster_config.models.agents}
    assert {what: planned[what] for what in same} == {what: resolved[stage] for what, stage in same.items()}
