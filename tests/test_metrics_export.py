"""bdc's custom metrics on a real node's Prometheus endpoint: the names and tags documented in
bdc_ray/metrics.py, with the values the code paths that record them produced.

The tests read the session cluster's endpoint (`ray_metrics_url`: a known port, exports every
2 s, so reads poll with a bounded timeout). Other tests record the same metrics on that cluster,
so each test compares what it added: per exported series (one per worker process, Ray's
`WorkerId` label), the value now minus the value before the test (0 for a series new since);
series of processes that exited meanwhile are left out. Prometheus names carry Ray's `ray_`
prefix and the counter suffix `_total`.
"""

from __future__ import annotations

import collections
import os
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.ray

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MICRO = {  # an untrained-size model: builds in seconds, writes garbage, exercises every path
    "name": "micro", "seed": 0, "layers": 1, "hidden": 32, "heads": 2, "steps": 10, "warmup": 0, "vocab_size": 300,
    "synth": {"train_per_family": 10, "heldout_per_family": 0, "heldout_comp_per_family": 0},
}
EXPORT_TIMEOUT_S = 180.0
BDC_TAGS = ("agent", "status", "solved", "stage", "unit")


@pytest.fixture(scope="module")
def micro_model(tmp_path_factory) -> tuple[str, str]:
    """(build_root, model folder) of MICRO, built once for the module."""
    from bdc_ray.tiny import TinyModelConfig, build_tiny

    root = str(tmp_path_factory.mktemp("micro-models"))
    return root, str(build_tiny(TinyModelConfig.model_validate(MICRO), root, threads=1, progress=False))


Series = tuple[str, frozenset]
"""A sample name and ALL its labels (Ray's WorkerId among them): one process's series."""


def scrape_series(url: str) -> dict[Series, float]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples if s.name.startswith("ray_bdc_")}


def settled(url: str) -> dict[Series, float]:
    """The endpoint once two reads a report interval apart agree: what earlier tests recorded has all
    been exported, so none of it is counted as added by the next test."""
    from tests.conftest import METRICS_REPORT_INTERVAL_MS

    deadline = time.time() + EXPORT_TIMEOUT_S
    previous = scrape_series(url)
    while time.time() < deadline:
        time.sleep(METRICS_REPORT_INTERVAL_MS / 1000 + 0.5)
        current = scrape_series(url)
        if current == previous:
            return current
        previous = current
    raise AssertionError(f"the metrics endpoint did not settle in {EXPORT_TIMEOUT_S:.0f} s")


class Exported:
    """What the endpoint exports beyond what it exported when this was made (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.before = settled(url)

    def added(self) -> dict[tuple[str, frozenset], float]:
        """Sample name + bdc tags -> value added since, summed over processes."""
        totals: dict[tuple[str, frozenset], float] = collections.defaultdict(float)
        for (name, labels), value in scrape_series(self.url).items():
            delta = value - self.before.get((name, labels), 0.0)
            if delta:
                totals[(name, frozenset((k, v) for k, v in labels if k in BDC_TAGS))] += delta
        return dict(totals)


@pytest.fixture
def metrics(ray_metrics_url) -> Exported:
    return Exported(ray_metrics_url)


def key(name: str, **tags: str) -> tuple[str, frozenset]:
    return name, frozenset(tags.items())


def wait_for(metrics: Exported, expected: dict[tuple[str, frozenset], float]) -> dict[tuple[str, frozenset], float]:
    """Poll until every expected series has its value (exports are periodic); fail with what was seen."""
    deadline = time.time() + EXPORT_TIMEOUT_S
    seen: dict = {}
    while time.time() < deadline:
        try:
            seen = metrics.added()
        except OSError:
            seen = {}
        if all(seen.get(k) == v for k, v in expected.items()):
            return seen
        time.sleep(1)
    missing = {k: (v, seen.get(k)) for k, v in expected.items() if seen.get(k) != v}
    raise AssertionError(f"after {EXPORT_TIMEOUT_S:.0f} s, (expected, exported) differ for {missing}; exported: {seen}")


def test_sandbox_and_llm_counters(metrics, micro_model):
    import ray

    from bdc_ray.llm.actors import start_llm_actor
    from bdc_ray.llm.spec import BackendSpec
    from bdc_ray.problems.types import CallTest
    from bdc_ray.sandbox import SandboxLimits
    from bdc_ray.sandbox.ray_pool import SandboxPool

    pool = SandboxPool(workers_per_actor=1, limits=SandboxLimits(time_s=2, program_time_s=10), actors=1,
                       ray_options={"num_cpus": 0.5})
    try:
        square = [CallTest(fn_name="f", args=[3], expected=9)]
        programs = ["def f(x):\n    return x * x\n"] * 3 + ["def f(x):\n    return x\n"] * 2 + ["raise SystemExit(3)\n"]
        results = pool.run_many([(p, square) for p in programs], desc=None)
    finally:
        pool.shutdown()
    statuses = collections.Counter(r.status for r in results)
    assert statuses["passed"] == 3 and statuses["failed"] == 2 and len(statuses) == 3, statuses

    _, model = micro_model
    actor = start_llm_actor(BackendSpec(backend="transformers", path=model, name="probe", threads=1), {"num_cpus": 0.5})
    sampling = {"max_new_tokens": 8, "temperature": 0.0}
    calls = [ray.get(actor.generate.remote([f"def f{i}(x):"], sampling)) for i in range(3)]
    tokens = sum(stats["completion_tokens"] for _, stats in calls)
    assert tokens == ray.get(actor.stats.remote())["completion_tokens"] > 0

    expected = {key("ray_bdc_sandbox_runs_total", status=s): float(n) for s, n in statuses.items()}
    expected[key("ray_bdc_llm_calls_total", agent="probe")] = 3.0
    expected[key("ray_bdc_llm_tokens_total", agent="probe")] = float(tokens)
    wait_for(metrics, expected)
    ray.kill(actor)


def test_boost_counters_match_its_traces(metrics, micro_model, tmp_path):
    """A real Boost stage: exported problems, rollouts and sandbox runs equal what its traces record."""
    from bdc_ray.artifacts.traces import read_traces
    from bdc_ray.config import load_config
    from tests.boost.support import boost

    build_root, _ = micro_model
    cfg = load_config(overrides={
        "run_name": "metrics", "storage_path": str(tmp_path / "runs"),
        "data": {"synthetic": {"train_per_family": 1, "heldout_per_family": 0, "heldout_comp_per_family": 0}},
        "models": {"build_root": build_root, "agents": [
            {"name": "micro", "tiny": MICRO, "resources": {"num_cpus": 0.5},
             "prompts": {"max_thought_tokens": 12, "max_code_tokens": 32}}]},
        "resources": {"sandbox": {"num_cpus": 0.5}},
        "sandbox": {"workers_per_actor": 1, "limits": {"time_s": 2, "program_time_s": 10}},
        "stages": {"boost": {"max_problems": 2, "max_concurrent_problems": 2,
                             "search": {"rollouts": 1, "width": 1, "n_sim": 1, "max_depth": 1}}},
    })
    boost(cfg)
    records = read_traces(cfg.layout.traces_dir)
    assert len(records) == 2

    solved = collections.Counter(str(r.hidden_passed_all).lower() for r in records)
    runs: collections.Counter = collections.Counter()  # by verdict: every simulated program, then the hidden check
    for r in records:
        runs.update(e.status for e in r.evaluations)
        assert len(r.evaluations) == sum(r.sandbox_runs.values())  # sandbox_runs counts them by agent
        if r.hidden_status is not None:
            runs[r.hidden_status] += 1
    expected = {key("ray_bdc_problems_total", solved=s): float(n) for s, n in solved.items()}
    expected |= {key("ray_bdc_sandbox_runs_total", status=s): float(n) for s, n in runs.items() if n}
    rollouts = sum(r.rollouts for r in records)
    if rollouts:  # Ray refuses zero increments, so a run without rollouts exports no series
        expected[key("ray_bdc_rollouts_total")] = float(rollouts)
    seen = wait_for(metrics, expected)
    if not rollouts:
        assert key("ray_bdc_rollouts_total") not in seen
    assert seen.get(key("ray_bdc_llm_calls_total", agent="micro"), 0) > 0
    assert seen.get(key("ray_bdc_llm_tokens_total", agent="micro"), 0) > 0


def test_training_loss_gauges(metrics):
    """What rank 0 of an expert run and every Tune trial report (record_training), per unit."""
    import ray

    @ray.remote(num_cpus=0.1)
    class Trainer:
        def report(self, stage: str, unit: str, loss: float, step: int) -> None:
            from bdc_ray.metrics import record_training

            record_training(stage, unit, loss, step)

    trainer = Trainer.remote()  # kept alive: Ray drops a dead process's gauges
    ray.get(trainer.report.remote("disentangle", "expert_0", 0.5, 50))
    ray.get(trainer.report.remote("disentangle", "expert_0", 0.25, 100))
    ray.get(trainer.report.remote("customize", "trial_1", 1.5, 20))
    wait_for(metrics, {
        key("ray_bdc_train_loss", stage="disentangle", unit="expert_0"): 0.25,
        key("ray_bdc_train_step", stage="disentangle", unit="expert_0"): 100,
        key("ray_bdc_train_loss", stage="customize", unit="trial_1"): 1.5,
    })
