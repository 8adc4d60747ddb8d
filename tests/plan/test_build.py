"""The plan of the committed cluster config against every committed cluster file, the embedded
default without one, and node counts and waves on a small hand-made cluster file. Times are
asserted only as the figures and formulas give them, never as this machine's."""

from __future__ import annotations

import math

import pytest
import yaml

from bdc_ray.boost import PromptBook, worst_case_generations
from bdc_ray.config import load_config
from bdc_ray.plan import PlanError, Throughput, build_plan, read_cluster_file
from bdc_ray.plan.stages import Role
from tests.conftest import ROOT

CLUSTER_FILES = ["aws.yaml", "gcp.yaml", "kuberay/raycluster.yaml", "kuberay/rayjob.yaml", "kuberay/rayservice.yaml"]
FIGURES = Throughput()


@pytest.fixture(scope="module")
def cluster_cfg():
    return load_config(ROOT / "cluster" / "ray_config.yaml")


def _stages(plan):
    return {s.name: s for s in plan.stages}


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_the_cluster_config_plans_on_every_committed_cluster_file(cluster_cfg, name):
    plan = build_plan(cluster_cfg, "cluster/ray_config.yaml", read_cluster_file(ROOT / "cluster" / name), FIGURES)
    stages = _stages(plan)
    assert {s: stages[s].nodes for s in stages} == {
        "data": {"cpu": 4},                    # 8 sandbox actors of 8 CPUs, two per 16-CPU node
        "boost": {"gpu": 8, "cpu": 4},         # 4 + 4 agent replicas, one GPU each, and the sandboxes
        "disentangle": {"gpu": 8},             # max_concurrent_runs 8 of the 13 runs
        "customize": {"gpu": 8},               # max_concurrent_trials 8 of the 16 trials
        "eval": {"gpu": 8, "cpu": 4},          # 4 solvers x 2 splits (vLLM teachers are not measured), and the sandboxes
        "serve": {"gpu": 4},                   # max_replicas
    }
    assert all(not s.short for s in plan.stages), [s.short for s in plan.stages]
    for stage in plan.stages:
        for row in stage.demands:
            assert row.fits == (["cpu"] if row.key == "resources.sandbox" else ["gpu"]), (stage.name, row)
    walls = [s.wall_s for s in plan.stages if s.name != "serve"]
    assert plan.total_wall_s == pytest.approx(sum(walls)) and all(w > 0 for w in walls)
    assert plan.total_gpu_hours == pytest.approx(sum(s.gpu_hours for s in plan.stages))
    assert stages["serve"].gpu_hours_per_hour == (1, 4) and stages["serve"].wall_s is None


def test_the_cluster_plan_follows_the_formulas(cluster_cfg):
    plan = build_plan(cluster_cfg, "c", read_cluster_file(ROOT / "cluster" / "aws.yaml"), FIGURES)
    stages = _stages(plan)
    experts = cluster_cfg.stages.disentangle.experts
    run_s = experts.steps * experts.grad_accum * experts.micro_batch_tokens / FIGURES.lora_training_gpu.value
    assert stages["disentangle"].wall_s == pytest.approx(math.ceil(13 / 8) * run_s)
    assert stages["disentangle"].gpu_hours == pytest.approx(13 * run_s / 3600)

    search, train = cluster_cfg.stages.customize.search, cluster_cfg.stages.customize.train
    trial_s = train.steps * train.tokens_per_step / FIGURES.lora_training_gpu.value
    assert stages["customize"].wall_s == pytest.approx(math.ceil(search.num_samples / 8) * trial_s)

    # Boost: both 7B agents are instruct-style vLLM agents with 4 replicas, so the wall time is
    # one agent's tokens over its replicas, and every GPU is held that long.
    agent = cluster_cfg.models.agents[0]
    book = PromptBook(style=agent.style, **agent.prompts.model_dump())
    roles = [Role(a.name, False, True) for a in cluster_cfg.models.agents]
    worst = worst_case_generations(cluster_cfg.stages.boost.search, roles)[agent.name]
    typical = {"thought": 40, "refine": 40, "program": 131, "continuation": 171}
    per_problem = FIGURES.boost_spent_share.value * sum(
        n * min(typical[k], book.max_new_tokens()[k]) for k, n in worst.items())
    expected = 6000 * per_problem / (FIGURES.vllm_generation_gpu.value * agent.replicas)
    assert stages["boost"].wall_s == pytest.approx(expected)
    assert stages["boost"].gpu_hours == pytest.approx(8 * expected / 3600)

    eval_s = 600 * 10 * 1024 / FIGURES.hf_generation_gpu.value  # the held-out split, the longest task
    assert stages["eval"].wall_s == pytest.approx(eval_s + 4 * 900 * 10 / (FIGURES.sandbox_runs_per_worker.value * 64))


def test_the_embedded_default_plans_on_a_local_machine():
    plan = build_plan(load_config(), "ray_config.yaml", None, FIGURES)
    assert plan.cluster is None and any("no cluster file: node counts not computed" in n for n in plan.notes)
    assert all(s.nodes is None for s in plan.stages)
    assert plan.total_gpu_hours == 0 and plan.total_wall_s > 0
    stages = _stages(plan)
    assert stages["boost"].demands[0].fits == ["any"]
    assert "1,323/s" in stages["boost"].formula, "tiny agents on the CPU use the measured tiny figure"
    assert stages["disentangle"].demands[0].asked == 7, "K 6 + all-data, max_concurrent_runs null: all at once"


def _small_cluster(tmp_path, gpu_max: int) -> str:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({
        "max_workers": 10,
        "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {"CPU": 0}, "node_config": {}},
            "cpu": {"min_workers": 0, "max_workers": 4, "resources": {"CPU": 8}, "node_config": {}},
            "gpu": {"min_workers": 0, "max_workers": gpu_max, "resources": {"CPU": 8, "GPU": 1}, "node_config": {}},
        },
    }))
    return str(path)


def _experts(num_workers: int = 1, max_concurrent_runs: int | None = 2):
    scaling = {"num_workers": num_workers, "use_gpu": True, "resources_per_worker": {"CPU": 4, "GPU": 1},
               "max_concurrent_runs": max_concurrent_runs}
    return load_config(overrides={"stages": {"disentangle": {"cluster": {"k": 3}, "experts": {"scaling": scaling}}}})


def test_three_experts_on_one_gpu_nodes_two_at_a_time_need_two_nodes(tmp_path):
    cfg = _experts()
    plan = build_plan(cfg, "c", read_cluster_file(_small_cluster(tmp_path, gpu_max=8)), FIGURES)
    stage = _stages(plan)["disentangle"]
    run_s = cfg.stages.disentangle.experts.steps * 2048 / FIGURES.lora_training_gpu.value
    assert stage.nodes == {"gpu": 2} and stage.demands[0].placed == 2 and not stage.short
    assert stage.wall_s == pytest.approx(2 * run_s), "4 runs (3 experts + all-data), 2 at a time: 2 waves"
    assert _stages(plan)["data"].nodes == {"cpu": 1}, "the sandbox lands on a CPU node, not a GPU one"


def test_max_workers_of_the_type_is_respected_and_said(tmp_path):
    plan = build_plan(_experts(), "c", read_cluster_file(_small_cluster(tmp_path, gpu_max=1)), FIGURES)
    stage = _stages(plan)["disentangle"]
    assert stage.nodes == {"gpu": 1} and stage.demands[0].placed == 1
    assert stage.short == ["Ray Train worker of an expert run: 1 of 2 at once (max_workers of gpu reached)"]
    unstartable = build_plan(_experts(num_workers=2), "c", read_cluster_file(_small_cluster(tmp_path, gpu_max=1)), FIGURES)
    assert _stages(unstartable)["disentangle"].wall_s is None and unstartable.total_wall_s is None


def test_runs_left_to_the_cluster_are_what_fits_at_the_start(tmp_path):
    """max_concurrent_runs null on a cluster scaled to zero: Ray Train sees only the head, one run at a time."""
    plan = build_plan(_experts(max_concurrent_runs=None), "c", read_cluster_file(_small_cluster(tmp_path, 8)), FIGURES)
    assert _stages(plan)["disentangle"].demands[0].asked == 1


def test_a_request_no_node_type_holds_names_its_key(cluster_cfg):
    greedy = cluster_cfg.model_copy(deep=True)
    greedy.stages.customize.search.gpus_per_trial = 2
    greedy.serve.resources.resources = {"tpu_node": 0.01}
    with pytest.raises(PlanError) as err:
        build_plan(greedy, "c", read_cluster_file(ROOT / "cluster" / "aws.yaml"), FIGURES)
    lines = str(err.value).splitlines()
    assert lines[0].startswith("stages.customize.search (cpus_per_trial, gpus_per_trial, custom_resources_per_trial): "
                               "{CPU: 4, GPU: 2, gpu_node: 0.01} fits no node type of ")
    assert lines[1].startswith("serve.resources: {CPU: 4, GPU: 1, tpu_node: 0.01} fits no node type of ")
