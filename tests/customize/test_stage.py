"""The stage from a run folder laid out as the Disentangle stage leaves it, with the real embedder."""

from __future__ import annotations

import numpy as np
import pytest

from bdc_ray import storage
from bdc_ray.customize.config import CustomizeConfig
from bdc_ray.customize.stage import hypernet_dir, load_rows, prepare, train_stage
from bdc_ray.problems.synth import SynthConfig
from tests.customize.conftest import FAMILIES, family_rows


def write_run(run_dir: str, setup) -> list[dict]:
    """boost/sft.jsonl, disentangle/clusters/ (real MiniLM embeddings) and disentangle/experts/manifest.json."""
    from bdc_ray.disentangle.clusters import Clustering, save_clustering
    from bdc_ray.disentangle.embed import DEFAULT_EMBEDDER, embed_texts
    from bdc_ray.disentangle.manifest import ExpertEntry, ExpertManifest, save_manifest

    rows = family_rows(10, seed=4)
    storage.write_jsonl_atomic(storage.join(run_dir, "boost", "sft.jsonl"), rows)
    emb = embed_texts([r["problem"] for r in rows])
    families = list(FAMILIES)
    labels = np.array([families.index(r["family"]) for r in rows])
    centroids = np.stack([emb[labels == k].mean(0) for k in range(len(families))])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    clustering = Clustering(k=2, centroids=centroids.astype(np.float32), labels=labels,
                            ids=[r["problem_id"] for r in rows], silhouette={}, embedder=DEFAULT_EMBEDDER)
    save_clustering(clustering, storage.join(run_dir, "disentangle", "clusters"))
    manifest = ExpertManifest(
        base_model=setup.base,
        lora={"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj", "down_proj"]},
        experts=[ExpertEntry(name=f"expert_{k}", path=p, size=10, final_loss=0.1, steps=60, cluster=k,
                             centroid=centroids[k].tolist()) for k, p in enumerate(setup.experts)],
    )
    save_manifest(manifest, storage.join(run_dir, "disentangle", "experts"))
    return rows


@pytest.fixture(scope="module")
def run_dir(family_setup, tmp_path_factory) -> str:
    folder = str(tmp_path_factory.mktemp("run") / "r")
    write_run(folder, family_setup)
    return folder


SMALL = {"train": {"steps": 6, "eval_every": 3, "tokens_per_step": 512}, "hypernet": {"hidden": 8}}


def test_prepare_reads_experts_clusters_and_rows_and_embeds_the_problems(run_dir, family_setup):
    data = prepare(run_dir, CustomizeConfig(val_fraction=0.3))
    assert data.base_model == family_setup.base and data.expert_paths == family_setup.experts
    assert data.expert_names == ["expert_0", "expert_1"] and data.embedder == "all-MiniLM-L6-v2"
    assert data.train_features.shape == (len(data.train_rows), 384 + 2)
    assert len(data.train_rows) + len(data.val_rows) == 20 and data.val_rows
    assert storage.exists(storage.join(run_dir, "customize", "embeddings"))
    np.testing.assert_allclose(np.linalg.norm(data.train_features[:, :384], axis=1), 1.0, rtol=1e-5)


def test_train_stage_writes_the_hypernetwork_skips_when_done_and_retrains_on_a_new_config(run_dir):
    config = CustomizeConfig.model_validate(SMALL)
    first = train_stage(run_dir, config, progress=False)
    assert not first["resumed"] and first["best_val_loss"] <= first["initial_val_loss"]
    assert storage.exists(storage.join(hypernet_dir(run_dir), "hypernet.json"))
    assert train_stage(run_dir, config, progress=False)["resumed"]
    changed = CustomizeConfig.model_validate({**SMALL, "hypernet": {"hidden": 12}})
    assert not train_stage(run_dir, changed, progress=False)["resumed"]
    assert train_stage(run_dir, changed, progress=False)["resumed"]
    # an expert retrained (another fingerprint in the manifest): the hypernetwork over it is stale
    from bdc_ray.disentangle.manifest import experts_dir, load_manifest, save_manifest

    manifest = load_manifest(experts_dir(run_dir))
    manifest.experts[0].fingerprint = "retrained"
    save_manifest(manifest, experts_dir(run_dir))
    assert not train_stage(run_dir, changed, progress=False)["resumed"]

    from bdc_ray.customize.solver import load_customized
    from bdc_ray.llm.base import SamplingParams

    solver = load_customized(hypernet_dir(run_dir), threads=1)  # the recorded embedder: real MiniLM
    assert solver.hypernet.arch.hidden == 12
    texts = solver.generate(["Handle xs as asked."], SamplingParams(max_new_tokens=12))
    assert len(texts) == 1 and texts[0][0]


def test_rows_come_from_the_synthetic_suite_or_a_file(run_dir, tmp_path):
    synthetic = SynthConfig(train_per_family=2, heldout_per_family=0, heldout_comp_per_family=0)
    rows = load_rows(str(tmp_path / "fresh"), CustomizeConfig(source="synthetic:train"), synthetic)
    assert len(rows) == 12 and all(r["task"] == "t2c" and r["code"] for r in rows)
    path = str(tmp_path / "rows.jsonl")
    storage.write_jsonl_atomic(path, rows[:5])
    assert load_rows(run_dir, CustomizeConfig(source=path)) == rows[:5]
    with pytest.raises(FileNotFoundError, match="run Boost first"):
        load_rows(str(tmp_path / "empty"), CustomizeConfig())
