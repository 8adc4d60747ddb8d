"""Expert runs on a real local Ray cluster: Ray Train (TorchTrainer) with DeepSpeed ZeRO-2 and with
DDP, two runs in flight together, a worker killed mid-run, adapters reloaded with plain peft.

The DeepSpeed items share ONE test because every DeepSpeed run pays the worker start-up and
engine set-up (the first run on a machine also JIT-compiles DeepSpeed's shm comm op, about
140 s on 2 cores, cached in TORCH_EXTENSIONS_DIR afterwards).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bdc_ray import timing
from bdc_ray.artifacts.experts import load_manifest
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.artifacts.sft import SFTRow
from bdc_ray.disentangle import experts
from bdc_ray.disentangle.expert_config import ExpertsConfig, ScalingSection
from bdc_ray.disentangle.expert_worker import FAIL_ONCE_ENV, load_probe
from bdc_ray.disentangle.experts import fingerprint, plan_runs, train_experts

SMALL = dict(steps=8, checkpoint_every=2, micro_batch_tokens=1024, lr=1e-2, warmup=2)
TWO_WORKERS = dict(num_workers=2, resources_per_worker={"CPU": 0.5}, max_failures=1)
"""Half a CPU per worker: two 2-worker runs fit the 2-CPU test cluster at once."""


def _rows(tiny_base, families):
    return [r for r in tiny_base.rows if r.family in families]


def _lora_weights(path: str) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "adapter_model.safetensors"))


def _assert_reloads_in_peft(base_path: str, adapter_path: str) -> None:
    """PeftModel.from_pretrained on a fresh base gives the trained model's logits (saved with the adapter)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config = json.loads((Path(adapter_path) / "adapter_config.json").read_text())
    assert config["r"] == 8 and sorted(config["target_modules"]) == ["q_proj", "v_proj"]
    probe = load_probe(adapter_path)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), adapter_path).eval()
    with torch.no_grad():
        logits = model(input_ids=probe["input_ids"], attention_mask=probe["attention_mask"]).logits
    real = probe["attention_mask"].bool()
    assert torch.allclose(logits[real], probe["logits"][real], atol=1e-5)
    base = AutoModelForCausalLM.from_pretrained(base_path).eval()
    with torch.no_grad():
        untouched = base(input_ids=probe["input_ids"], attention_mask=probe["attention_mask"]).logits
    assert not torch.allclose(untouched[real], probe["logits"][real], atol=1e-3), "the adapter changed nothing"


def _held_out_loss(base_path: str, adapter_path: str, rows, share: float) -> float:
    """The validation loss of a saved adapter, reloaded in plain peft, on the rows its run held out."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bdc_ray.artifacts.sft import prompt_response
    from bdc_ray.disentangle.lora_train import split_validation
    from bdc_ray.training import encode_pairs, model_context, validation_loss

    pairs = [prompt_response(r) for r in rows]
    _, held = split_validation(pairs, share)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), adapter_path).eval()
    examples = encode_pairs(tokenizer, [pairs[i] for i in held], model_context(tokenizer, model.config, None))
    return validation_loss(model, examples, tokenizer.pad_token_id)


def test_plan_one_expert_per_cluster_then_the_baseline(tiny_base) -> None:
    arith, string = _rows(tiny_base, {"arith"}), _rows(tiny_base, {"string"})
    p2t = arith[0].model_copy(update={"task": "p2t", "code": None})
    centroids = np.eye(3)
    specs = plan_runs({2: string, 0: [p2t, *arith], 1: arith[:1]}, arith + string, centroids, min_rows=2)
    assert [s.name for s in specs] == ["expert_0", "expert_2", "all_data"]  # cluster 1 is below min_rows
    assert specs[0].rows == arith  # the p2t row of a problem with a t2c row adds nothing
    assert specs[1].centroid == [0.0, 0.0, 1.0] and specs[1].cluster == 2
    assert specs[2].cluster is None and len(specs[2].rows) == len(arith) + len(string)
    with pytest.raises(ValueError, match="no centroid"):
        plan_runs({3: arith}, arith, centroids)
    with pytest.raises(ValueError, match="baseline would be empty"):
        plan_runs({}, [], centroids)


def test_rows_follow_their_problems_cluster(tiny_base) -> None:
    arith, string = _rows(tiny_base, {"arith"}), _rows(tiny_base, {"string"})
    p2t = arith[0].model_copy(update={"task": "p2t", "code": None})
    ids = [r.problem_id for r in arith + string]
    labels = [1] * len(arith) + [0] * len(string)
    grouped = experts.rows_by_cluster([p2t, *arith, *string], ids, labels, k=3)
    assert grouped == {0: string, 1: [p2t, *arith], 2: []}
    with pytest.raises(ValueError, match="1 problem.s. have no cluster"):
        experts.rows_by_cluster(arith, ids[1:], labels[1:], k=2)


def test_fingerprint_follows_what_decides_the_adapter(tiny_base) -> None:
    spec = plan_runs({}, _rows(tiny_base, {"arith"}), np.eye(1))[0]
    cfg = ExpertsConfig()
    key = fingerprint(spec, "/m", cfg)
    assert key == fingerprint(spec, "/m", ExpertsConfig())
    # Scheduling does not change what is trained ...
    assert key == fingerprint(spec, "/m", cfg.model_copy(update={"scaling": ScalingSection(max_failures=0)}))
    # ... settings, base model, data and world size do.
    assert key != fingerprint(spec, "/m", cfg.model_copy(update={"steps": 7}))
    assert key != fingerprint(spec, "/other", cfg)
    assert key != fingerprint(spec, "/m", cfg.model_copy(update={"scaling": ScalingSection(num_workers=3)}))
    fewer = plan_runs({}, spec.rows[:-1], np.eye(1))[0]
    assert key != fingerprint(fewer, "/m", cfg)


def test_runs_that_fit_count_whole_worker_groups() -> None:
    two_cpu = {"CPU": 2.0, "memory": 1e9}
    assert ScalingSection(num_workers=2, resources_per_worker={"CPU": 0.5}).runs_that_fit(two_cpu) == 2
    assert ScalingSection(num_workers=2, resources_per_worker={"CPU": 1}).runs_that_fit(two_cpu) == 1
    assert ScalingSection(num_workers=4, resources_per_worker={"CPU": 1}).runs_that_fit(two_cpu) == 1  # queues
    gpus = {"CPU": 64.0, "GPU": 8.0}
    assert ScalingSection(num_workers=4, use_gpu=True, resources_per_worker={"CPU": 4}).runs_that_fit(gpus) == 2


@pytest.mark.ray
@pytest.mark.slow
def test_deepspeed_runs_together_survive_a_killed_worker_and_reload_in_peft(tiny_base, ray_local, tmp_path) -> None:
    """expert_0 and all_data get the same rows, so the expert, whose rank 1 dies after step 5,
    must end exactly where the uninterrupted baseline ends: it resumed from the step-4
    checkpoint (every rank's ZeRO shard and RNG) instead of starting over or skipping data."""
    rows = _rows(tiny_base, {"arith", "list", "io"})
    marker = tmp_path / "rank1-died"
    cfg = ExpertsConfig(
        **SMALL, deepspeed=True, zero_stage=2, dtype="fp32", scaling=TWO_WORKERS,
        worker_env={FAIL_ONCE_ENV: f"expert_0:1:5:{marker}"},
    )
    out = str(tmp_path / "experts")
    manifest = train_experts({0: rows}, rows, np.array([[0.6, 0.8]]), tiny_base.path, cfg, out, progress=False)

    assert marker.exists(), "the injected worker death did not happen"
    expert, baseline = manifest.experts[0], manifest.all_data
    assert (expert.cluster, expert.centroid, expert.size) == (0, [0.6, 0.8], len(rows))
    assert expert.resumed_from == [4] and baseline.resumed_from == []
    assert expert.steps == baseline.steps == 8
    assert [s for s, _ in expert.loss_curve] == list(range(1, 9))
    assert [loss for _, loss in expert.loss_curve] == pytest.approx([loss for _, loss in baseline.loss_curve], abs=1e-6)
    mine, reference = _lora_weights(expert.path), _lora_weights(baseline.path)
    assert mine.keys() == reference.keys() and all(np.allclose(mine[k], reference[k], atol=1e-6) for k in mine)

    for entry in (expert, baseline):
        assert "state/zero_pp_rank_0_mp_rank_00_optim_states.pt" in entry.checkpoint_shards["0"]
        assert "state/zero_pp_rank_1_mp_rank_00_optim_states.pt" in entry.checkpoint_shards["1"]
        assert entry.reload_max_abs_diff is not None and entry.reload_max_abs_diff < 1e-5
        _assert_reloads_in_peft(tiny_base.path, entry.path)
    assert load_manifest(out) == manifest


def _run_folder(tmp_path: Path, clusters: dict[int, list[SFTRow]]) -> RunLayout:
    """A run folder as Boost and the clustering step leave it: boost/sft.jsonl and disentangle/clusters/."""
    from bdc_ray.artifacts.clustering import Clustering, save_clustering
    from bdc_ray.artifacts.sft import write_sft_rows

    run = RunLayout(str(tmp_path / "run"))
    rows = [r for k in sorted(clusters) for r in clusters[k]]
    write_sft_rows(run.sft_file, rows)
    ids = [r.problem_id for r in rows]
    labels = np.array([k for k in sorted(clusters) for _ in clusters[k]])
    clustering = Clustering(
        k=len(clusters), centroids=np.eye(len(clusters), dtype=np.float32), labels=labels, ids=ids,
        silhouette={}, embedder="test",
    )
    save_clustering(clustering, run.clusters_dir)
    return run


@pytest.mark.ray
def test_the_command_names_a_missing_sft_file(ray_local, tmp_path, tiny_base) -> None:
    from typer.testing import CliRunner

    from bdc_ray.cli.disentangle import app

    result = CliRunner().invoke(app, ["train", "--run-dir", str(tmp_path), "--base-model", tiny_base.path])
    assert result.exit_code == 2
    assert "SFT file not found" in result.output and "sft.jsonl" in result.output


@pytest.mark.ray
@pytest.mark.slow
def test_start_up_phases_come_from_the_marks_of_this_launch_only() -> None:
    launched = 1000.0
    marks = {"process_created": 1004.0, "entered": 1010.0, "model_loaded": 1012.0, "engine_ready": 1013.0,
             "first_step": 1014.5, "last_step": 1030.0, "final_saved": 1031.0}
    with timing.recording() as timings:
        experts.record_startup("expert_0", launched, 1033.0, marks, deepspeed=True)
        experts.record_startup("expert_1", launched, 1033.0, {**marks, "entered": 990.0}, deepspeed=True)  # found done
        experts.record_startup("expert_2", launched, 1033.0, None, deepspeed=True)
    seconds = {p.name: p.seconds for p in timings.phases}
    assert {p.unit for p in timings.phases} == {"expert_0"}
    assert seconds["expert run: Train controller + placement group + worker process spawned"] == 4.0
    assert seconds["expert run: data + optimizer + DeepSpeed initialize"] == 1.0
    assert seconds["expert run: launch -> first step done (all of the above)"] == 14.5
    assert seconds["expert run: final checkpoint reported -> fit() returned (controller, teardown)"] == 2.0


def test_ddp_experts_from_a_run_folder_and_a_rerun_that_skips_them(tiny_base, ray_local, tmp_path, monkeypatch) -> None:
    """Also: with validation on, each run saves the adapter of its best validation pass."""
    rows = _rows(tiny_base, {"count", "branch"})
    cfg = ExpertsConfig(**SMALL, deepspeed=False, scaling=TWO_WORKERS, validation_share=0.3, eval_every=2)
    run = _run_folder(tmp_path, {0: rows})
    out = run.experts_dir
    with timing.recording() as timings:
        manifest = experts.run_train_stage(run, cfg, tiny_base.path, progress=False)

    assert [e.name for e in manifest.experts] == ["expert_0"] and manifest.all_data is not None
    # every run's start-up, split from rank 0's marks, labelled by the stage and the run
    first_steps = [p for p in timings.phases if p.name == "expert run: launch -> first step done (all of the above)"]
    assert sorted(p.unit for p in first_steps) == ["all_data", "expert_0"]
    assert {p.stage for p in timings.phases} == {"disentangle"}
    assert any(p.name == "expert run: data + optimizer + DDP prepare" for p in timings.phases)
    assert manifest.experts[0].centroid == [1.0] and manifest.experts[0].size == manifest.all_data.size == len(rows)
    for entry in [*manifest.experts, manifest.all_data]:
        assert entry.steps == 8 and entry.resumed_from == []
        assert "torch_state.pt" in entry.checkpoint_shards["0"] and "rng_rank1.pt" in entry.checkpoint_shards["1"]
        assert "best_lora.pt" in entry.checkpoint_shards["0"]
        _assert_reloads_in_peft(tiny_base.path, entry.path)
        assert [step for step, _ in entry.validation_curve] == [2, 4, 6, 8]
        assert entry.validation_loss == min(loss for _, loss in entry.validation_curve)
        assert entry.validation_loss == dict(entry.validation_curve)[entry.best_step]
        assert _held_out_loss(tiny_base.path, entry.path, rows, 0.3) == pytest.approx(entry.validation_loss, abs=1e-4)
    assert load_manifest(out) == manifest

    def no_training(*args, **kwargs):
        raise AssertionError("a finished expert was trained again")

    monkeypatch.setattr(experts, "_train_one", no_training)
    assert experts.run_train_stage(run, cfg, tiny_base.path, progress=False) == manifest

    # Rows that changed retrain their run; the other run is kept.
    trained = []
    monkeypatch.setattr(experts, "_train_one", lambda spec, *a, **k: trained.append(spec.name) or manifest.experts[0])
    train_experts({0: rows[:-1]}, rows, np.eye(1), tiny_base.path, cfg, out, progress=False)
    assert trained == ["expert_0"]
