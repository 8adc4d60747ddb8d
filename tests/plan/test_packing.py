"""packing.py on small hand-made node types: counts a person can check, the max_workers caps,
whole worker groups, GPU-free nodes first for work without GPUs."""

from bdc_ray.plan.nodes import ClusterFile, NodeType
from bdc_ray.plan.packing import Request, pack

HEAD = NodeType("head", {"CPU": 0.0}, head=True)


def cluster(gpu_max: int = 8, cpu_max: int = 8, cap: int | None = None, gpu_min: int = 0) -> ClusterFile:
    return ClusterFile("small.yaml", [
        HEAD,
        NodeType("cpu", {"CPU": 16.0, "cpu_node": 1.0}, max_workers=cpu_max),
        NodeType("gpu", {"CPU": 8.0, "GPU": 1.0, "gpu_node": 1.0}, min_workers=gpu_min, max_workers=gpu_max),
    ], max_workers=cap)


GPU_WORKER = {"CPU": 4.0, "GPU": 1.0}


def test_one_gpu_per_node_takes_one_node_per_request():
    packed = pack([Request(GPU_WORKER, 3)], cluster())
    assert packed.nodes == {"gpu": 3} and packed.placed == [3]


def test_small_requests_share_nodes_and_fractions_add_up():
    packed = pack([Request({"CPU": 8.0, "cpu_node": 0.01}, 8), Request({"CPU": 0.0, "gpu_node": 0.01}, 100)], cluster())
    assert packed.nodes == {"cpu": 4, "gpu": 1} and packed.placed == [8, 100]


def test_max_workers_of_the_type_and_of_the_cluster_cap_what_runs_at_once():
    assert pack([Request(GPU_WORKER, 5)], cluster(gpu_max=2)).placed == [2]
    capped = pack([Request(GPU_WORKER, 3), Request({"CPU": 16.0}, 3)], cluster(cap=4))
    assert capped.placed == [3, 1] and capped.nodes == {"gpu": 3, "cpu": 1}


def test_a_worker_group_is_placed_whole_or_not_at_all():
    packed = pack([Request(GPU_WORKER, 2, per_unit=2)], cluster(gpu_max=3))
    assert packed.placed == [1] and packed.nodes == {"gpu": 2}, "the second run's 2 workers do not fit the 1 GPU left"


def test_work_without_gpus_goes_to_gpu_free_nodes_first():
    assert pack([Request({"CPU": 2.0}, 2)], cluster()).nodes == {"cpu": 1}
    # ... and to a GPU node only when no GPU-free node may start.
    assert pack([Request({"CPU": 2.0}, 1)], cluster(cpu_max=0)).nodes == {"gpu": 1}


def test_min_workers_are_up_from_the_start_and_counted():
    packed = pack([Request(GPU_WORKER, 1)], cluster(gpu_min=2))
    assert packed.nodes == {"gpu": 2} and packed.placed == [1]
