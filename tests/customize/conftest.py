"""A tiny random Llama and real peft experts on it, built once per session (a few seconds).

Two kinds of experts:
- `random_experts`: E=3 LoRA adapters (r=4) with random non-zero B, so that every expert
  changes the output differently; for the composition identities.
- `family_setup`: a base trained on two families of problems and 2 adapters trained briefly
  with plain peft, one per family; each expert is right for half of the `family_rows`, so a
  router has something to learn.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import random
from dataclasses import dataclass

import numpy as np
import pytest

from bdc_ray.artifacts.sft import SFTRow

SEED = 0
R, ALPHA = 4, 8
TARGETS = ["q_proj", "v_proj", "down_proj"]

PHRASINGS = ["Solve the task on {n}.", "Write the function for {n}.", "Handle {n} as asked."]
FAMILIES = {"total": "# add the numbers\nreturn sum({n})\n", "reverse": "# walk from the end\nreturn {n}[::-1]\n"}
"""Both families share their phrasings: only the routing features tell them apart, so a model
cannot pick the right response from the prompt and a router has to."""
NAMES = ["xs", "items", "data", "vals", "seq", "words", "text", "line", "row", "nums", "arr", "buf"]


@dataclass(frozen=True)
class TinyBase:
    path: str
    tokenizer: object


def family_rows(count_per_family: int, seed: int) -> list[SFTRow]:
    """t2c rows as Boost writes them to sft.jsonl."""
    rng = random.Random(f"family-rows:{seed}")
    rows = []
    for family, response in FAMILIES.items():
        for i in range(count_per_family):
            name = rng.choice(NAMES)
            thought, code = response.format(n=name).split("\n", 1)
            rows.append(SFTRow(
                problem_id=f"{family}/{seed}/{i}", family=family, agent="fixture", task="t2c",
                problem=rng.choice(PHRASINGS).format(n=name), thoughts=[thought[2:]], code=code,
            ))
    return rows


def family_embeddings(rows: list[SFTRow], dim: int = 16, noise: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random unit embeddings clustered by family, and the family centroids (stand-ins for embed_texts)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(FAMILIES), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    index = {f: i for i, f in enumerate(FAMILIES)}
    emb = np.stack([centres[index[r.family]] + noise * rng.normal(size=dim) for r in rows])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb.astype(np.float32), centres.astype(np.float32)


def _all_texts() -> list[str]:
    return [f"### Task\n{p.format(n=n)}\n### Solution\n{r.format(n=n)}"
            for r in FAMILIES.values() for n in NAMES for p in PHRASINGS]


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> TinyBase:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from bdc_ray.tiny import train_tokenizer

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("customize-base")
    tokenizer = train_tokenizer(_all_texts(), vocab_size=320)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(SEED)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return TinyBase(path=str(folder), tokenizer=tokenizer)


def load_base(tiny_base: TinyBase):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_base.path).eval()


def _lora(tiny_base: TinyBase, seed: int, **overrides):
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = dict(r=R, lora_alpha=ALPHA, target_modules=TARGETS, lora_dropout=0.0)
    config.update(overrides)
    return get_peft_model(load_base(tiny_base), LoraConfig(**config))


@pytest.fixture(scope="session")
def random_experts(tiny_base, tmp_path_factory) -> list[str]:
    import torch

    folder = tmp_path_factory.mktemp("random-experts")
    paths = []
    for e in range(3):
        model = _lora(tiny_base, seed=100 + e)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, 0.3)
        path = str(folder / f"expert_{e}")
        model.save_pretrained(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def make_expert(tiny_base, tmp_path_factory):
    """An adapter with other LoRA settings, to test what composition refuses."""
    folder = tmp_path_factory.mktemp("odd-experts")

    def make(name: str, **overrides) -> str:
        path = str(folder / name)
        _lora(tiny_base, seed=7, **overrides).save_pretrained(path)
        return path

    return make


def _train(model, examples, pad_id: int, steps: int, lr: float, seed: int) -> None:
    import torch

    from bdc_ray.training import collate

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    rng = random.Random(seed)
    model.train()
    for _ in range(steps):
        ids, mask, labels = collate(rng.sample(examples, min(8, len(examples))), pad_id)
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


@dataclass(frozen=True)
class FamilySetup:
    base: str
    experts: list[str]


@pytest.fixture(scope="session")
def family_setup(tiny_base, tmp_path_factory) -> FamilySetup:
    """A base trained on both families (it learns the format and hesitates between the two
    responses), then expert_0 tuned on "total" and expert_1 on "reverse" with plain peft."""
    from bdc_ray.customize.data import encode_rows

    folder = tmp_path_factory.mktemp("family")
    rows = family_rows(24, seed=1)
    pad = tiny_base.tokenizer.pad_token_id
    base = load_base(tiny_base)
    _train(base, encode_rows(rows, tiny_base.tokenizer, context=256), pad, steps=200, lr=3e-3, seed=0)
    base.save_pretrained(folder / "base")
    tiny_base.tokenizer.save_pretrained(folder / "base")
    family_base = TinyBase(path=str(folder / "base"), tokenizer=tiny_base.tokenizer)
    paths = []
    for e, family in enumerate(FAMILIES):
        model = _lora(family_base, seed=200 + e)
        examples = encode_rows([r for r in rows if r.family == family], tiny_base.tokenizer, context=256)
        _train(model, examples, pad, steps=60, lr=2e-2, seed=e)
        paths.append(str(folder / f"expert_{e}"))
        model.save_pretrained(paths[-1])
    return FamilySetup(base=family_base.path, experts=paths)


@dataclass(frozen=True)
class FamilyRun:
    data: object
    """TrainingData"""
    rows: list[SFTRow]
    embed: object
    """texts -> embeddings, for every problem of `rows` (a lookup standing in for embed_texts)"""
    outcome: object
    snapshot: object


def family_training_data(setup: FamilySetup, rows: list[dict]):
    from bdc_ray.customize.data import TrainingData, split_rows
    from bdc_ray.customize.features import routing_features

    emb, centroids = family_embeddings(rows)
    feats = {r.problem_id: f for r, f in zip(rows, routing_features(emb, centroids))}
    train, val = split_rows(rows, 0.3, seed=0)
    data = TrainingData(
        base_model=setup.base, expert_names=["expert_0", "expert_1"], expert_paths=setup.experts, expert_clusters=[0, 1],
        embedder="lookup",
        centroids=centroids, train_rows=train, train_features=np.stack([feats[r.problem_id] for r in train]),
        val_rows=val, val_features=np.stack([feats[r.problem_id] for r in val]),
    )
    table = {}
    for r, e in zip(rows, emb):
        table.setdefault(r.problem, e)
    return data, (lambda texts: np.stack([table[t] for t in texts]))


@pytest.fixture(scope="session")
def family_run(family_setup) -> FamilyRun:
    """A hypernetwork trained on problems whose statements do not say which expert is right."""
    from bdc_ray.customize.config import HyperNetSection, TrainSection
    from bdc_ray.customize.train import fit_hypernet

    rows = family_rows(20, seed=2)
    data, embed = family_training_data(family_setup, rows)
    outcome, snapshot = fit_hypernet(
        data, HyperNetSection(hidden=32), TrainSection(steps=60, eval_every=10, lr=1e-2, tokens_per_step=512)
    )
    return FamilyRun(data=data, rows=rows, embed=embed, outcome=outcome, snapshot=snapshot)
