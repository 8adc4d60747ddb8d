"""Custom metrics: a zero increment (a problem solved at the root has 0 rollouts) must not raise."""

from bdc_ray.metrics import add, boost_metrics, llm_metrics, sandbox_metrics


def test_zero_and_positive_increments(ray_local):
    rollouts = boost_metrics()["rollouts"]
    add(rollouts, 0)
    add(rollouts, 3)
    add(llm_metrics()["tokens"], 0, {"agent": "a"})
    add(sandbox_metrics()["runs"], 1, {"status": "passed"})
