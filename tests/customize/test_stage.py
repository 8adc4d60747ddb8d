"""The stage from a run folder laid out as the Disentangle stage leaves it, with the real embedder."""

from __future__ import annotations

import numpy as np
import pytest

from bdc_ray import storage
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.artifacts.sft import SFTRow, write_sft_rows
from bdc_ray.customize.config import CustomizeConfig
from bdc_ray.customize.stage import load_rows, prepare, train_stage
from bdc_ray.problems.suite_files import SuiteFolder
from bdc_ray.problems.synth import SynthConfig
from tests.customize.conftest import FAMILIES, family_rows


def write_run(run_dir: str, setup) -> list[SFTRow]:
    """boost/sft.jsonl, disentangle/clusters/ (real MiniLM embeddings) and disentangle/experts/manifest.json."""
    from bdc_ray.artifacts.clustering import Clustering, save_clustering
    from bdc_ray.artifacts.experts import ExpertEntry, ExpertManifest, save_manifest
    from bdc_ray.disentangle import DEFAULT_EMBEDDER, embed_texts

    layout = RunLayout(run_dir)
    rows = family_rows(10, seed=4)
    write_sft_rows(layout.sft_file, rows)
    emb = embed_texts([r.problem for r in rows])
    families = list(FAMILIES)
    labels = np.array([families.index(r.family) for r in rows])
    centroids = np.stack([emb[labels == k].mean(0) for k in range(len(families))])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    clustering = Clustering(k=2, centroids=centroids.astype(np.float32), labels=labels,
                            ids=[r.problem_id for r in rows], silhouette={}, embedder=DEFAULT_EMBEDDER)
    save_clustering(clustering, layout.clusters_dir)
    manifest = ExpertManifest(
        base_model=setup.base,
        lora={"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj", "down_proj"]},
        experts=[ExpertEntry(name=f"expert_{k}", path=p, size=10, final_loss=0.1, steps=60, cluster=k,
                             centroid=centroids[k].tolist()) for k, p in enumerate(setup.experts)],
    )
    save_manifest(manifest, layout.experts_dir)
    return rows


@pytest.fixture(scope="module")
def run(family_setup, tmp_path_factory) -> RunLayout:
    folder = str(tmp_path_factory.mktemp("run") / "r")
    write_run(folder, family_setup)
    return RunLayout(folder)


SMALL = {"train": {"steps": 6, "eval_every": 3, "tokens_per_step": 512}, "hypernet": {"hidden": 8}}


def test_prepare_reads_experts_clusters_and_rows_and_embeds_the_problems(run, family_setup):
    data = prepare(run, CustomizeConfig(val_fraction=0.3))
    assert data.base_model == family_setup.base and data.expert_paths == family_setup.experts
    assert data.expert_names == ["expert_0", "expert_1"] and data.embedder == "all-MiniLM-L6-v2"
    assert data.train_features.shape == (len(data.train_rows), 384 + 2)
    assert len(data.train_rows) + len(data.val_rows) == 20 and data.val_rows
    assert storage.exists(run.customize_embeddings)
    np.testing.assert_allclose(np.linalg.norm(data.train_features[:, :384], axis=1), 1.0, rtol=1e-5)


def test_train_stage_writes_the_hypernetwork_skips_when_done_and_retrains_on_a_new_config(run):
    config = CustomizeConfig.model_validate(SMALL)
    first = train_stage(run, config, progress=False)
    assert not first["resumed"] and first["best_val_loss"] <= first["initial_val_loss"]
    assert storage.exists(storage.join(run.hypernet_dir, "hypernet.json"))
    assert train_stage(run, config, progress=False)["resumed"]
    changed = CustomizeConfig.model_validate({**SMALL, "hypernet": {"hidden": 12}})
    assert not train_stage(run, changed, progress=False)["resumed"]
    assert train_stage(run, changed, progress=False)["resumed"]
    # an expert retrained (another fingerprint in the manifest): the hypernetwork over it is stale
    from bdc_ray.artifacts.experts import load_manifest, save_manifest

    manifest = load_manifest(run.experts_dir)
    manifest.experts[0].fingerprint = "retrained"
    save_manifest(manifest, run.experts_dir)
    assert not train_stage(run, changed, progress=False)["resumed"]

    from bdc_ray.customize.solver import load_customized
    from bdc_ray.llm.base import SamplingParams

    solver = load_customized(run.hypernet_dir, threads=1)  # the recorded embedder: real MiniLM
    assert solver.router.hypernet.arch.hidden == 12
    texts = solver.generate(["Handle xs as asked."], SamplingParams(max_new_tokens=12))
    assert len(texts) == 1 and texts[0][0]


def test_rows_come_from_the_synthetic_suite_or_a_file(run, tmp_path):
    synthetic = SynthConfig(train_per_family=2, heldout_per_family=0, heldout_comp_per_family=0)
    fresh = RunLayout(str(tmp_path / "fresh"))
    rows = load_rows(fresh, CustomizeConfig(source="synthetic:train"), SuiteFolder(synthetic, fresh.data_dir))
    assert len(rows) == 12 and all(r.task == "t2c" and r.code for r in rows)
    path = str(tmp_path / "rows.jsonl")
    write_sft_rows(path, rows[:5])
    assert load_rows(run, CustomizeConfig(source=path)) == rows[:5]
    with pytest.raises(FileNotFoundError, match="run Boost first"):
        load_rows(RunLayout(str(tmp_path / "empty")), CustomizeConfig())
