"""A complete deployable solver built from scratch in about 20 s: base model, experts manifest, hypernetwork.

What a user deploys after a pipeline run is three artifacts (a base model folder, the experts
folder with its manifest.json, the hypernetwork folder). This builds the same three, small
enough for a laptop, so the Serve application can be tried (`bdc serve run --demo`), tested
and load-tested without running Boost, Disentangle and Customize first:

- base: a 2-layer Llama trained until it reproduces the reference programs of a few synthetic
  problems (so /solve has programs that really pass their tests);
- experts: one peft LoRA per family, briefly trained on that family's problems;
- hypernetwork: the Customize stage's own network and checkpoint format, untrained, with its
  zero-initialised heads replaced by random ones so that different problems get visibly
  different routing weights (an untrained network would route every problem uniformly).

It makes every stage's artifacts, so it sits on top of them all: it trains with the training kit
(`collate`, `masked_loss`) and writes through the stages' own writers (the experts manifest,
the hypernetwork checkpoint).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bdc_ray import storage
from bdc_ray.problems.synth import SynthConfig, generate_suite, training_text
from bdc_ray.problems.types import Problem

FAMILIES = ("arith", "io")
R, ALPHA = 4, 8
TARGETS = ["q_proj", "v_proj"]
DONE_FILE = "demo.json"


@dataclass(frozen=True)
class DemoArtifacts:
    base_model: str
    experts: str
    """The experts folder: manifest.json + one peft folder per expert."""
    hypernet: str
    problems: list[Problem]
    """The problems the base model learnt to solve (their tests are real)."""


def demo_problems(per_family: int = 3, seed: int = 0) -> list[Problem]:
    suite = generate_suite(SynthConfig(seed=seed, train_per_family=per_family, heldout_per_family=0,
                                       heldout_comp_per_family=0, families=list(FAMILIES)))
    return list(suite.train)


def _train(model, examples, pad_id: int, steps: int, lr: float) -> float:
    import torch

    from bdc_ray.training import collate, masked_loss

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        ids, mask, labels = collate(examples, pad_id)
        loss = masked_loss(model(input_ids=ids, attention_mask=mask).logits, labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    return loss.item()


def build_demo(folder: str | Path, *, seed: int = 0, base_steps: int = 130, expert_steps: int = 15,
               routing_spread: float = 1.0) -> DemoArtifacts:
    """Build (or reuse, when `folder` holds a finished build) the three artifacts under `folder`."""
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    from bdc_ray.artifacts.experts import ExpertEntry, ExpertManifest, LoraShape, expert_name, save_manifest
    from bdc_ray.customize import ExpertRef, HyperNetArch, HyperNetwork, HypernetMeta, build_composed, save_checkpoint
    from bdc_ray.disentangle import DEFAULT_EMBEDDER, embed_texts
    from bdc_ray.tiny import encode, train_tokenizer

    root = Path(folder)
    problems = demo_problems(seed=seed)
    paths = DemoArtifacts(str(root / "base"), str(root / "experts"), str(root / "hypernet"), problems)
    recipe = {"seed": seed, "base_steps": base_steps, "expert_steps": expert_steps, "routing_spread": routing_spread}
    done = root / DONE_FILE
    if done.is_file() and json.loads(done.read_text()) == recipe:
        return paths

    torch.manual_seed(seed)
    tokenizer = train_tokenizer([training_text(p) for p in problems], vocab_size=600)
    examples, _ = encode(problems, tokenizer, context=256)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    base = LlamaForCausalLM(config)
    _train(base, examples, tokenizer.pad_token_id, base_steps, lr=3e-3)
    base.save_pretrained(paths.base_model)
    tokenizer.save_pretrained(paths.base_model)

    centroids = []
    manifest = ExpertManifest(base_model=paths.base_model,
                              lora=LoraShape(r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS))
    for k, family in enumerate(FAMILIES):
        mine = [i for i, p in enumerate(problems) if p.family == family]
        centroid = embed_texts([problems[i].prompt for i in mine]).mean(0)
        centroids.append((centroid / np.linalg.norm(centroid)).tolist())
        torch.manual_seed(seed + 100 + k)
        lora = get_peft_model(AutoModelForCausalLM.from_pretrained(paths.base_model),
                              LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS))
        loss = _train(lora, [examples[i] for i in mine], tokenizer.pad_token_id, expert_steps, lr=1e-2)
        path = str(Path(paths.experts) / expert_name(k))
        lora.save_pretrained(path)
        manifest.record(ExpertEntry(name=expert_name(k), path=path, size=len(mine), examples=len(mine),
                                    final_loss=loss, steps=expert_steps, cluster=k, centroid=centroids[-1]))
    save_manifest(manifest, paths.experts)

    names = [e.name for e in manifest.experts]
    composed, _ = build_composed(paths.base_model, [e.path for e in manifest.experts], names, "all")
    dim = len(centroids[0])
    arch = HyperNetArch(in_dim=dim + len(centroids), n_modules=len(composed.module_names), n_experts=len(names), r=R,
                        hidden=32)
    hypernet = HyperNetwork(arch)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        hypernet.heads.weight.normal_(0.0, routing_spread, generator=generator)
    meta = HypernetMeta(
        arch=arch.to_dict(), layers="all", module_names=composed.module_names, base_model=paths.base_model,
        experts=[ExpertRef(name=e.name, path=e.path, cluster=e.cluster) for e in manifest.experts], embedder=DEFAULT_EMBEDDER,
        centroids=centroids, settings={"demo": recipe}, metrics={},
    )
    save_checkpoint(paths.hypernet, hypernet.state_dict(), meta)
    storage.write_text_atomic(str(done), json.dumps(recipe))  # the completion marker, written last
    return paths
