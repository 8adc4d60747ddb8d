"""The LoRA loop in one process: it lowers the loss, trains only the adapter, and resumes exactly."""

from __future__ import annotations

import pytest

from bdc_ray.disentangle.expert_config import ExpertsConfig
from bdc_ray.disentangle.lora_train import (
    LoopSettings,
    LoopState,
    TorchStepper,
    lora_model,
    make_optimizer,
    micro_batches,
    train_loop,
    train_plain,
)
from bdc_ray.artifacts.sft import prompt_response
from bdc_ray.training import encode_pairs, validation_loss

CFG = ExpertsConfig(steps=12, lr=1e-2, warmup=2, micro_batch_tokens=1024)


@pytest.fixture(scope="module")
def data(tiny_base):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base.path)
    examples = encode_pairs(tokenizer, [prompt_response(r) for r in tiny_base.rows], context=320)
    return examples, tokenizer.pad_token_id


def test_training_lowers_the_loss_and_touches_only_the_lora(tiny_base, data) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    examples, pad = data
    base = AutoModelForCausalLM.from_pretrained(tiny_base.path)
    before = validation_loss(base, examples, pad)
    run = train_plain(tiny_base.path, examples, pad, CFG)
    after = validation_loss(run.model, examples, pad)
    assert after < before - 0.1
    assert run.state.step == 12 and len(run.state.losses) == 12 and run.state.samples > 0
    trainable = {n for n, p in run.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    frozen = {n.replace(".base_layer", ""): p for n, p in run.model.get_base_model().named_parameters()}
    for name, weight in base.named_parameters():
        assert torch.equal(frozen[name], weight), f"{name} changed: only LoRA matrices may train"


def test_ranks_draw_disjoint_batches_in_a_fixed_order(data) -> None:
    import itertools

    examples, _ = data
    first = list(itertools.islice(micro_batches(examples, 512, seed=3), 40))
    assert first == list(itertools.islice(micro_batches(examples, 512, seed=3), 40))
    assert first != list(itertools.islice(micro_batches(examples, 512, seed=4), 40))
    rank0 = list(itertools.islice(micro_batches(examples, 512, seed=3, rank=0, world=2), 20))
    rank1 = list(itertools.islice(micro_batches(examples, 512, seed=3, rank=1, world=2), 20))
    assert rank0 == first[0::2] and rank1 == first[1::2]
    later = list(itertools.islice(micro_batches(examples, 512, seed=3, rank=1, world=2, skip=5), 15))
    assert later == rank1[5:]


def _model_and_stepper(tiny_base, settings: LoopSettings):
    model = lora_model(tiny_base.path, CFG.lora, seed=0)
    model.train()
    return model, TorchStepper(model, make_optimizer(model, settings), settings)


def test_a_run_stopped_and_resumed_ends_where_an_uninterrupted_one_does(tiny_base, data) -> None:
    """What a checkpoint must hold: LoRA weights, optimizer state, RNG, and the loop state."""
    import torch

    examples, pad = data
    settings = LoopSettings.from_config(CFG.model_copy(update={"grad_accum": 2}))
    straight, stepper = _model_and_stepper(tiny_base, settings)
    full = train_loop(stepper, examples, pad, settings)

    saved = {}

    def stop_at_5(state: LoopState) -> None:
        if state.step == 5:
            saved["lora"] = {n: p.detach().clone() for n, p in first.named_parameters() if p.requires_grad}
            saved["optimizer"] = first_stepper.optimizer.state_dict()
            saved["rng"] = torch.random.get_rng_state()
            saved["state"] = LoopState.from_dict(state.to_dict())
            raise KeyboardInterrupt

    first, first_stepper = _model_and_stepper(tiny_base, settings)
    with pytest.raises(KeyboardInterrupt):
        train_loop(first_stepper, examples, pad, settings, on_step=stop_at_5)

    resumed, stepper = _model_and_stepper(tiny_base, settings)
    resumed.load_state_dict(saved["lora"], strict=False)
    stepper.optimizer.load_state_dict(saved["optimizer"])
    torch.random.set_rng_state(saved["rng"])
    state = train_loop(stepper, examples, pad, settings, state=saved["state"])

    assert state.step == full.step == 12 and state.losses == pytest.approx(full.losses, abs=1e-6)
    ours = dict(resumed.named_parameters())
    for name, weight in straight.named_parameters():
        assert torch.allclose(ours[name], weight, atol=1e-6), name


def test_loss_curve_and_final_loss_summarise_every_step() -> None:
    state = LoopState(step=40, losses=[float(i) for i in range(40)])
    curve = state.loss_curve(points=4)
    assert curve == [(10, 4.5), (20, 14.5), (30, 24.5), (40, 34.5)]
    assert state.final_loss == pytest.approx(sum(range(38, 40)) / 2)
    assert LoopState().final_loss is None
    with pytest.raises(ValueError, match="no training example"):
        train_loop(None, [], 0, LoopSettings.from_config(CFG))


def test_the_validation_split_is_a_pure_function_of_each_prompt() -> None:
    from bdc_ray.disentangle.lora_train import split_validation

    pairs = [(f"task {i}", "code") for i in range(40)]
    train, held = split_validation(pairs, 0.25)
    assert sorted(train + held) == list(range(40)) and 4 <= len(held) <= 16
    # A row's side depends on its prompt alone: not on its position or on the other rows.
    again_train, again_held = split_validation(pairs[::-1], 0.25)
    assert sorted(pairs[::-1][i] for i in again_held) == sorted(pairs[i] for i in held)
    assert split_validation(pairs[:2], 0.01)[1] and split_validation(pairs[:2], 0.99)[0]  # never all or nothing
    assert split_validation(pairs, 0.0) == (list(range(40)), [])


def test_the_best_validation_pass_is_the_one_kept(tiny_base, data) -> None:
    """Passes at steps 4, 8 and 12; the matrices are then pushed away from what trained, and
    restore_best must bring back exactly the best pass's matrices, whose loss was recorded."""
    import torch

    from bdc_ray.disentangle.lora_train import BestByValidation

    examples, pad = data
    train, held = examples[: len(examples) // 2], examples[len(examples) // 2 :]
    model = lora_model(tiny_base.path, CFG.lora, CFG.seed)
    settings = LoopSettings.from_config(CFG)
    tracker = BestByValidation(model, held, pad, every=4, last_step=CFG.steps)
    state = train_loop(TorchStepper(model, make_optimizer(model, settings), settings), train, pad, settings,
                       on_step=lambda s: tracker.observe(s) if tracker.due(s.step) else None)
    assert [step for step, _ in state.validation] == [4, 8, 12]
    assert state.best_step == min(state.validation, key=lambda p: p[1])[0]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(1.0)
    tracker.restore_best()
    assert validation_loss(model, held, pad) == pytest.approx(state.best_validation_loss, abs=1e-5)
    assert LoopState.from_dict(state.to_dict()) == state
