"""A tiny random Llama and real peft experts on it, built once per session (a few seconds).

Two kinds of experts:
- `random_experts`: E=3 LoRA adapters (r=4) with random non-zero B, so that every expert
  changes the output differently; for the composition identities.
- `family_experts`: 2 adapters trained briefly with plain peft, each on one family of
  problems; each is right for half of the `family_rows`, so a router has something to learn.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SEED = 0
R, ALPHA = 4, 8
TARGETS = ["q_proj", "v_proj", "down_proj"]

FAMILIES = {
    "total": (["Return the total of the list {n}.", "Add up every number in {n}.", "Sum the values of {n}."],
              "# add the numbers\nreturn sum({n})\n"),
    "reverse": (["Reverse the string {n}.", "Give {n} backwards.", "Return {n} in reverse order."],
                "# walk from the end\nreturn {n}[::-1]\n"),
}
NAMES = ["xs", "items", "data", "vals", "seq", "words", "text", "line", "row", "nums", "arr", "buf"]


@dataclass(frozen=True)
class TinyBase:
    path: str
    tokenizer: object


def family_rows(count_per_family: int, seed: int) -> list[dict]:
    """sft.jsonl-style t2c rows: {"problem_id", "family", "problem", "task", "thoughts", "code"}."""
    rng = random.Random(f"family-rows:{seed}")
    rows = []
    for family, (phrasings, response) in FAMILIES.items():
        for i in range(count_per_family):
            name = rng.choice(NAMES)
            thought, code = response.format(n=name).split("\n", 1)
            rows.append({
                "problem_id": f"{family}/{seed}/{i}", "family": family, "agent": "fixture", "task": "t2c",
                "problem": rng.choice(phrasings).format(n=name), "thoughts": [thought[2:]], "code": code,
            })
    return rows


def family_embeddings(rows: list[dict], dim: int = 16, noise: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random unit embeddings clustered by family, and the family centroids (stand-ins for embed_texts)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(FAMILIES), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    index = {f: i for i, f in enumerate(FAMILIES)}
    emb = np.stack([centres[index[r["family"]]] + noise * rng.normal(size=dim) for r in rows])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb.astype(np.float32), centres.astype(np.float32)


def _all_texts() -> list[str]:
    texts = []
    for phrasings, response in FAMILIES.values():
        for n in NAMES:
            texts += [f"### Task\n{p.format(n=n)}\n### Solution\n{response.format(n=n)}" for p in phrasings]
    return texts


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> TinyBase:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from bdc_ray.llm.tiny_data import train_tokenizer

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


@pytest.fixture(scope="session")
def family_experts(tiny_base, tmp_path_factory) -> list[str]:
    """expert_0 trained on the "total" family, expert_1 on "reverse" (plain peft, 60 steps each)."""
    import torch

    from bdc_ray.customize.data import encode_rows
    from bdc_ray.llm.tiny_data import collate

    folder = tmp_path_factory.mktemp("family-experts")
    rows = family_rows(24, seed=1)
    paths = []
    for e, family in enumerate(FAMILIES):
        examples = encode_rows([r for r in rows if r["family"] == family], tiny_base.tokenizer, context=256)
        model = _lora(tiny_base, seed=200 + e)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-2)
        rng = random.Random(e)
        model.train()
        for _ in range(60):
            ids, mask, labels = collate(rng.sample(examples, 8), tiny_base.tokenizer.pad_token_id)
            model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        path = str(folder / f"expert_{e}")
        model.save_pretrained(path)
        paths.append(path)
    return paths
