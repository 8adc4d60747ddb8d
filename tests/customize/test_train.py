"""Training lowers validation loss, and the router learns which expert a problem needs."""

from __future__ import annotations

import torch

from bdc_ray.customize.hypernet import HyperNetwork, expert_shares


def test_training_lowers_validation_loss_from_the_uniform_start(family_run):
    outcome = family_run.outcome
    assert [p.step for p in outcome.history] == [0, 10, 20, 30, 40, 50, 60]
    assert outcome.history[0].train_loss is None
    assert outcome.best_val_loss < 0.85 * outcome.initial_val_loss, outcome.history
    assert outcome.best_val_loss == min(p.val_loss for p in outcome.history)
    assert family_run.snapshot.meta.metrics["best_step"] == outcome.best_step > 0


def test_the_router_sends_each_family_to_its_own_expert(family_run):
    meta, data = family_run.snapshot.meta, family_run.data
    hypernet = HyperNetwork(meta.hypernet_arch)
    hypernet.load_state_dict(family_run.snapshot.state)
    with torch.no_grad():
        shares = expert_shares(hypernet.eval()(torch.from_numpy(data.val_features)), 2)
    families = [r.family for r in data.val_rows]
    reverse = shares[[f == "reverse" for f in families]][:, 1]
    total = shares[[f == "total" for f in families]][:, 1]
    # expert_1 was tuned on "reverse": every reverse problem gets more of its weight than any total
    # problem does. A ranking, not a margin: how far apart the shares end up depends on the
    # numerics of the installed transformers/peft (a mean gap of 0.08 with transformers 5.25), a
    # router that ignores its input ranks nothing.
    assert reverse.min() > total.max(), (reverse.tolist(), total.tolist())


def test_the_best_state_is_the_one_that_scored_best(family_run):
    from bdc_ray.customize.train import build_composed, validation_loss
    from bdc_ray.customize.data import encode_rows

    data, snapshot = family_run.data, family_run.snapshot
    composed, tokenizer = build_composed(data.base_model, data.expert_paths, data.expert_names, "all")
    examples = encode_rows(data.val_rows, tokenizer, 256)
    hypernet = HyperNetwork(snapshot.meta.hypernet_arch)
    hypernet.load_state_dict(snapshot.state)
    features = torch.from_numpy(data.val_features[[e.row for e in examples]])
    loss = validation_loss(composed, hypernet, examples, features, tokenizer.pad_token_id, 512)
    assert abs(loss - family_run.outcome.best_val_loss) < 1e-6
