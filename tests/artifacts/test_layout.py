"""The run folder's shape is RunLayout's: the paths README and DESIGN.md name, local or on object storage."""

from __future__ import annotations

from bdc_ray.artifacts.layout import RunLayout


def test_the_layout_keeps_the_run_folders_shape(tmp_path):
    run = RunLayout(str(tmp_path))
    assert run.sft_file == f"{tmp_path}/boost/sft.jsonl" and run.traces_dir == f"{tmp_path}/boost/traces"
    assert run.clusters_dir == f"{tmp_path}/disentangle/clusters" and run.experts_dir == f"{tmp_path}/disentangle/experts"
    assert run.hypernet_dir == f"{tmp_path}/customize/hypernet" and run.tune_results == f"{tmp_path}/customize/tune/results.jsonl"
    assert run.heldout_dir("base", "heldout") == f"{tmp_path}/eval/heldout/base/heldout"
    assert run.timings_file == f"{tmp_path}/timings.json"
    assert run.serve_config == f"{tmp_path}/serve/serve_config.yaml" and RunLayout("s3://b/r").data_dir == "s3://b/r/data"
