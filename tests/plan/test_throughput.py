"""The throughput table: every figure named with its unit and source, overridable from a file,
and an override moves the estimate."""

import pytest

from bdc_ray.config import load_config
from bdc_ray.plan import Throughput, ThroughputError, build_plan, load_throughput, read_cluster_file
from tests.conftest import ROOT


def test_every_figure_says_where_it_comes_from():
    for name, figure in Throughput():
        assert figure.source.startswith(("measured here:", "assumption:")), name
        assert figure.unit and figure.value > 0, name


def test_an_overridden_figure_changes_the_estimate(tmp_path):
    cfg = load_config(ROOT / "cluster" / "ray_config.yaml")
    aws = read_cluster_file(ROOT / "cluster" / "aws.yaml")
    faster = tmp_path / "a100.yaml"
    faster.write_text("vllm_generation_gpu: 1200\nlora_training_gpu: {value: 8000, source: 'measured on our A100s'}\n")
    figures = load_throughput(faster)
    assert figures.vllm_generation_gpu.source == f"override: {faster}"
    assert figures.lora_training_gpu.source == "measured on our A100s"
    assert figures.vllm_generation_gpu.unit == Throughput().vllm_generation_gpu.unit
    before = {s.name: s for s in build_plan(cfg, "c", aws, Throughput()).stages}
    after = {s.name: s for s in build_plan(cfg, "c", aws, figures).stages}
    assert after["boost"].wall_s == pytest.approx(before["boost"].wall_s / 2), "Boost is bound by its agents"
    assert after["disentangle"].gpu_hours == pytest.approx(before["disentangle"].gpu_hours / 4)
    assert after["eval"].wall_s == pytest.approx(before["eval"].wall_s), "held-out generation uses another figure"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vllm_tokens: 10\n", "vllm_tokens: unknown figure"),
        ("boost_spent_share: 1.5\n", "boost_spent_share is a share"),
        ("sandbox_runs_per_worker: -3\n", "sandbox_runs_per_worker.value"),
        ("[1, 2]\n", "must be a mapping"),
    ],
)
def test_a_bad_throughput_file_is_refused_with_the_figure_named(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ThroughputError, match=message):
        load_throughput(bad)
