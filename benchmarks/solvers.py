"""Every way of using one run's LoRA experts, for the benchmarks that compare them (ablation.py,
learning.py): the same base model, prompt format and greedy decoding, only the adapter differs.

- base:          the base model alone (the student);
- all_data:      Disentangle's baseline LoRA, trained on every row;
- expert_<k>:    one expert for every problem;
- uniform:       every expert at weight 1/E per rank (the experts' average, one rank-E*r LoRA);
- ties, linear:  peft's static merges of the experts (`add_weighted_adapter`);
- hard_routing:  each problem to the expert of its nearest cluster centroid (cosine), the
                 routing Disentangle's clustering implies;
- hypernetwork:  Customize's input-aware rank-wise weights.

The routed ones (base, experts, uniform, hard routing, hypernetwork) are weight vectors on the
one composed model; the merged and all-data adapters are peft folders on a plain backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from bdc_ray.artifacts.experts import load_manifest
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.llm.base import SamplingParams
from bdc_ray.problems.prompt_format import prompt_text

ADAPTER_SOLVERS = ("all_data", "ties", "linear")


def peft_merges(manifest, out: Path) -> dict[str, str]:
    """peft's TIES and linear merges of the experts, saved once as adapter folders under `out`."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folders = {"ties": out / "ties", "linear": out / "linear"}
    if all((f / "adapter_config.json").exists() for f in folders.values()):
        return {k: str(v) for k, v in folders.items()}
    names = [e.name for e in manifest.experts]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(manifest.base_model),
                                      manifest.experts[0].path, adapter_name=names[0])
    for e in manifest.experts[1:]:
        model.load_adapter(e.path, adapter_name=e.name)
    model.add_weighted_adapter(names, [1.0] * len(names), "ties", combination_type="ties", density=0.5)
    model.add_weighted_adapter(names, [1.0 / len(names)] * len(names), "linear", combination_type="linear")
    model.save_pretrained(str(out), selected_adapters=["ties", "linear"])
    return {k: str(v) for k, v in folders.items()}


class SolverSet:
    """A run folder's base model, experts, baselines and hypernetwork, loaded once."""

    def __init__(self, run: RunLayout, merges_dir: Path, threads: int = 1, max_new_tokens: int = 192):
        from bdc_ray.customize import load_customized
        from bdc_ray.llm.hf_backend import TransformersLLM

        self.manifest = load_manifest(run.experts_dir)
        if self.manifest.all_data is None:
            raise SystemExit(f"{run.root}: the experts manifest has no all_data baseline")
        self.solver = load_customized(run.hypernet_dir, threads=threads)
        self.composed, self.tokenizer = self.solver.composed, self.solver.tokenizer
        adapters = {"all_data": self.manifest.all_data.path, **peft_merges(self.manifest, merges_dir)}
        self.llm = TransformersLLM(self.manifest.base_model, adapters=adapters, device="cpu", threads=threads,
                                   max_batch_size=16)
        self.greedy = SamplingParams(max_new_tokens=max_new_tokens)
        self.experts = [e.name for e in self.manifest.experts]

    @property
    def names(self) -> list[str]:
        return ["base", "all_data", *self.experts, "uniform", "ties", "linear", "hard_routing", "hypernetwork"]

    def weights(self, name: str, statements: Sequence[str]):
        """The routing of a routed solver for these statements ([n, M, E*r]); None for an adapter solver."""
        n, composed = len(statements), self.composed
        if name in ADAPTER_SOLVERS:
            return None
        if name == "base":
            return composed.zeros(n)
        if name == "uniform":
            return composed.uniform(n)
        if name == "hard_routing":
            return self.solver.hard_routing(list(statements))
        if name == "hypernetwork":
            return self.solver.routing(list(statements))
        if name in self.experts:
            return composed.one_expert(self.experts.index(name), n)
        raise KeyError(f"unknown solver {name!r}; known: {self.names}")

    def generate(self, name: str, statements: Sequence[str]) -> list[str]:
        """One greedy program per statement, prompted in the training format."""
        prompts = [prompt_text(s) for s in statements]
        weights = self.weights(name, statements)
        if weights is None:
            texts = self.llm.generate(prompts, self.greedy, adapter=name)
        else:
            texts, _ = self.solver.generate_with_weights(prompts, weights, self.greedy)
        return [t[0] for t in texts]
