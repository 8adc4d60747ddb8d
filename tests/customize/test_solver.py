"""The customized solver rebuilt from disk: routing per problem, one batched generate, materialisation."""

from __future__ import annotations

import pytest
import torch
from peft import PeftModel

from bdc_ray.customize.checkpoint import save_checkpoint
from bdc_ray.customize.solver import CustomizedSolver, load_customized
from bdc_ray.llm.base import SamplingParams


@pytest.fixture(scope="module")
def solver(family_run, tmp_path_factory) -> CustomizedSolver:
    folder = str(tmp_path_factory.mktemp("solver") / "hypernet")
    save_checkpoint(folder, family_run.snapshot.state, family_run.snapshot.meta)
    return load_customized(folder, embed=family_run.embed, threads=1)


def problems(family_run, n):
    seen = []
    for row in family_run.data.val_rows:
        if row.problem not in seen:
            seen.append(row.problem)
    return seen[:n]


def test_routing_is_the_checkpoints_hypernetwork_on_the_problems_features(solver, family_run):
    from bdc_ray.customize.features import routing_features
    from bdc_ray.customize.hypernet import HyperNetwork

    texts = problems(family_run, 3)
    hypernet = HyperNetwork(family_run.snapshot.meta.hypernet_arch)
    hypernet.load_state_dict(family_run.snapshot.state)
    feats = torch.from_numpy(routing_features(family_run.embed(texts), family_run.data.centroids))
    torch.testing.assert_close(solver.routing(texts), hypernet.eval()(feats))
    shares = solver.shares(texts)
    assert shares.shape == (3, 2) and abs(shares.sum(1) - 1).max() < 1e-5
    assert solver.expert_names == ["expert_0", "expert_1"]


def test_the_router_alone_routes_as_the_solver(solver, family_run, tmp_path):
    """What the vLLM engine holds instead of a composed model: the checkpoint's router, no base."""
    from bdc_ray.customize import load_router

    folder = str(tmp_path / "hypernet")
    save_checkpoint(folder, family_run.snapshot.state, family_run.snapshot.meta)
    router = load_router(folder, embed=family_run.embed)
    texts = problems(family_run, 3)
    torch.testing.assert_close(router.weights(texts), solver.routing(texts))
    assert router.module_names == solver.composed.module_names and router.expert_names == solver.expert_names


def test_a_batch_of_problems_generates_what_each_problem_generates_alone(solver, family_run):
    texts = problems(family_run, 4)
    greedy = SamplingParams(max_new_tokens=24)
    together = solver.generate(texts, greedy)
    assert together == [solver.generate([t], greedy)[0] for t in texts]
    assert all(len(samples) == 1 and samples[0] for samples in together)
    # The tiny base was trained on the suite format: completions start with a thought line.
    assert sum(s[0].startswith("# ") for s in together) >= 3, together


def test_sampling_returns_n_completions_per_problem_with_stop_strings(solver, family_run):
    texts = problems(family_run, 2)
    sampling = SamplingParams(n=3, temperature=1.0, max_new_tokens=16, seed=0, stop=["\n"])
    out, stats = solver.generate_with_stats(texts, sampling)
    assert [len(s) for s in out] == [3, 3]
    assert all("\n" not in s for samples in out for s in samples)
    assert stats.completion_tokens > 0 and stats.prompt_tokens > 0
    again, _ = solver.generate_with_stats(texts, sampling)
    assert again == out  # same seed, same samples


def test_materialised_solver_matches_the_composed_model(solver, family_run, tmp_path):
    text = problems(family_run, 1)[0]
    folder = solver.materialize(text, tmp_path / "one")
    from transformers import AutoModelForCausalLM

    batch = solver.tokenizer([f"### Task\n{text}\n### Solution\n"], return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        expected = solver.composed(solver.routing([text]), **batch).logits
        peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(family_run.data.base_model),
                                               str(folder)).eval()
        torch.testing.assert_close(peft_model(**batch).logits, expected, atol=1e-5, rtol=0)


def test_a_checkpoint_for_other_layers_is_refused(family_run, tmp_path):
    meta = family_run.snapshot.meta.model_copy(update={"layers": "former"})
    folder = str(tmp_path / "mismatch")
    save_checkpoint(folder, family_run.snapshot.state, meta)
    with pytest.raises(ValueError, match="other modules"):
        load_customized(folder, embed=family_run.embed)


def test_generation_under_given_weights_is_the_chosen_expert(solver, family_run):
    from bdc_ray.llm.hf_backend import TransformersLLM

    texts = problems(family_run, 3)
    prompts = [f"### Task\n{t}\n### Solution\n" for t in texts]
    greedy = SamplingParams(max_new_tokens=20)
    composed = solver.composed
    mixed = torch.cat([composed.one_expert(1, 1), composed.zeros(1), composed.one_expert(0, 1)])
    got, _ = solver.generate_with_weights(prompts, mixed, greedy)
    data = family_run.data
    llm = TransformersLLM(data.base_model, adapters={"e0": data.expert_paths[0], "e1": data.expert_paths[1]},
                          device="cpu", threads=1)
    assert got[0] == llm.generate([prompts[0]], greedy, adapter="e1")[0]
    assert got[1] == llm.generate([prompts[1]], greedy)[0]
    assert got[2] == llm.generate([prompts[2]], greedy, adapter="e0")[0]
    with pytest.raises(ValueError, match="weight rows"):
        solver.generate_with_weights(prompts, mixed[:2], greedy)


def test_hard_routing_gives_each_problem_its_nearest_clusters_expert_alone(solver, family_run):
    """Each family's problems lie around their own centroid (the fixture's embeddings), and expert k
    was trained on cluster k: hard routing sends every problem to its family's expert, on all its ranks."""
    from bdc_ray.customize.features import centroid_similarity

    rows = {r.problem: r.family for r in family_run.data.val_rows}
    texts = list(rows)
    nearest = centroid_similarity(family_run.embed(texts), family_run.data.centroids).argmax(1).tolist()
    assert solver.router.nearest_experts(texts) == nearest
    assert len(set(nearest)) == 2, "the fixture's validation rows should cover both families"
    weights = solver.hard_routing(texts)
    composed = solver.composed
    for i, expert in enumerate(nearest):
        torch.testing.assert_close(weights[i : i + 1], composed.one_expert(expert, 1))
    assert [e.cluster for e in family_run.snapshot.meta.experts] == [0, 1]
