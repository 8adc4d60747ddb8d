"""The customized solver: base model + experts + hypernetwork, routing and generating per problem.

    solver = load_customized("<run>/customize/hypernet")
    solver.routing(["Reverse the string s."])             # [1, M, E*r] rank-wise weights
    solver.generate(problems, SamplingParams(n=4, temperature=0.8))

A batch of different problems is ONE batched generate: each row carries its own problem's
weights through every forward (ComposedLoRA), nothing is merged per request. Serve builds on
this class; `materialize` writes one problem's solver as a plain peft folder for engines that
only load adapters (vLLM).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from bdc_ray.customize.checkpoint import HypernetMeta, load_checkpoint
from bdc_ray.customize.features import Embedder, default_embedder
from bdc_ray.customize.hypernet import HyperNetwork, expert_shares
from bdc_ray.customize.inject import ComposedLoRA
from bdc_ray.customize.loading import build_composed
from bdc_ray.customize.router import Router
from bdc_ray.llm.base import GenerationStats, SamplingParams, Texts, generated_length, truncate_at_stop
from bdc_ray.problems.prompt_format import prompt_text
from bdc_ray.threads import configure_torch_threads
from bdc_ray.training import worker_device


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token as an OpenAI-style API reports its log-probability: the token's text, its
    log-probability under the model (before temperature and top_p) and the likeliest alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Completion:
    """One sample as an OpenAI-style API reports it: its text (cut at a stop string), the tokens the
    model produced for it, and why it ended: a stop token or string, or the max_new_tokens limit
    ("cancelled": its client went away and the row left the batch). `logprobs`, when asked for,
    has one entry per token of the text."""

    text: str
    tokens: int
    finish_reason: Literal["stop", "length", "cancelled"]
    logprobs: tuple[TokenLogprob, ...] | None = None


class CustomizedSolver:
    """Thread-safe: one lock serialises the forward passes, because routing weights are state of
    the shared model (two interleaved requests must never see each other's weights); the router
    serialises routing, because the embedder is shared too."""

    def __init__(
        self,
        composed: ComposedLoRA,
        hypernet: HyperNetwork,
        meta: HypernetMeta,
        tokenizer,
        embed: Embedder,
        *,
        max_batch_size: int = 16,
    ) -> None:
        if composed.module_names != meta.module_names:
            raise ValueError(
                "the hypernetwork was trained for other modules than the base + experts given "
                f"({len(meta.module_names)} vs {len(composed.module_names)}; first {meta.module_names[:1]} vs "
                f"{composed.module_names[:1]}): pass the same base model, experts and layers"
            )
        self.composed = composed
        self.router = Router(hypernet, meta, embed, composed.device)
        self.meta = meta
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self._lock = threading.Lock()
        eos = [tokenizer.eos_token_id, composed.model.generation_config.eos_token_id]
        # generation_config may list several end tokens (chat models end a turn with their own).
        self.stop_ids: set[int] = {i for e in eos for i in (e if isinstance(e, list) else [e]) if isinstance(i, int)}
        """Tokens that end a sample."""

    @classmethod
    def load(
        cls,
        hypernet_dir: str,
        *,
        base_model: str | None = None,
        expert_paths: Sequence[str] | None = None,
        embed: Embedder | None = None,
        device: str = "auto",
        threads: int | None = None,
        max_batch_size: int = 16,
    ) -> CustomizedSolver:
        """Rebuild from a checkpoint folder; `base_model`/`expert_paths` override the recorded
        paths (artifacts moved to another machine), `embed` the recorded embedder. `device`
        "auto": the GPU this process holds (a Serve replica or held-out task given one), else the CPU."""
        device = str(worker_device(device))
        if torch.device(device).type == "cpu":
            configure_torch_threads(threads)
        hypernet, meta = load_checkpoint(hypernet_dir)
        composed, tokenizer = build_composed(
            base_model or meta.base_model, expert_paths or [e.path for e in meta.experts],
            [e.name for e in meta.experts], meta.layers, device,
        )
        return cls(composed, hypernet, meta, tokenizer, embed or default_embedder(meta.embedder),
                   max_batch_size=max_batch_size)

    @property
    def expert_names(self) -> list[str]:
        return self.router.expert_names

    def routing(self, problems: Sequence[str]) -> torch.Tensor:
        """[n, M, E*r] weights of each problem statement."""
        return self.router.weights(problems)

    def hard_routing(self, problems: Sequence[str]) -> torch.Tensor:
        """[n, M, E*r] weights that give each problem its nearest cluster's expert alone."""
        return self.expert_weights(self.router.nearest_experts(problems))

    def expert_weights(self, experts: Sequence[int]) -> torch.Tensor:
        """[n, M, E*r] weights that run row i with expert `experts[i]` alone."""
        return torch.cat([self.composed.one_expert(e, 1) for e in experts])

    def shares(self, problems: Sequence[str]) -> np.ndarray:
        """[n, E] each expert's share of each problem's weight mass (rows sum to 1)."""
        return expert_shares(self.routing(problems), self.composed.n_experts).cpu().numpy()

    def generate(self, problems: Sequence[str], sampling: SamplingParams) -> Texts:
        """`sampling.n` completions per problem statement, prompted in the training format."""
        return self.generate_with_stats(problems, sampling)[0]

    def generate_with_stats(self, problems: Sequence[str], sampling: SamplingParams) -> tuple[Texts, GenerationStats]:
        completions, stats = self.complete_prompts([prompt_text(p) for p in problems], problems, sampling)
        return _texts(completions), stats

    def complete_prompts(
        self, prompts: Sequence[str], routing_texts: Sequence[str], sampling: SamplingParams
    ) -> tuple[list[list[Completion]], GenerationStats]:
        """Completions of raw `prompts`, each routed by its `routing_texts` entry (the problem
        statement), with what an API reports of each sample: its tokens and why it ended."""
        if len(prompts) != len(routing_texts):
            raise ValueError(f"{len(prompts)} prompts but {len(routing_texts)} routing texts")
        if not prompts:
            return [], GenerationStats()
        return self.complete_with_weights(prompts, self.routing(routing_texts), sampling)

    def generate_with_weights(
        self, prompts: Sequence[str], weights: torch.Tensor, sampling: SamplingParams
    ) -> tuple[Texts, GenerationStats]:
        """Completions of `prompts` under given weights [n, M, E*r] (one row per prompt), e.g. a
        routing of your own, `composed.one_expert(...)` or `composed.uniform(...)`."""
        completions, stats = self.complete_with_weights(prompts, weights, sampling)
        return _texts(completions), stats

    def complete_with_weights(
        self, prompts: Sequence[str], weights: torch.Tensor, sampling: SamplingParams
    ) -> tuple[list[list[Completion]], GenerationStats]:
        if weights.shape[0] != len(prompts):
            raise ValueError(f"{weights.shape[0]} weight rows for {len(prompts)} prompts")
        start = time.perf_counter()
        completions: list[list[Completion]] = []
        stats = GenerationStats()
        with self._lock, torch.inference_mode():
            if sampling.seed is not None:
                from transformers import set_seed

                set_seed(sampling.seed)
            for begin in range(0, len(prompts), self.max_batch_size):
                chunk = slice(begin, begin + self.max_batch_size)
                batch, batch_stats = self._generate_batch(list(prompts[chunk]), weights[chunk], sampling)
                completions += batch
                stats = stats + batch_stats
        stats.seconds = time.perf_counter() - start
        return completions, stats

    def _generate_batch(self, prompts: list[str], weights: torch.Tensor, sampling: SamplingParams):
        self.tokenizer.padding_side = "left"  # every prompt's last token where generation starts
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, return_token_type_ids=False)
        encoded = encoded.to(self.composed.device)
        kwargs: dict = {"max_new_tokens": sampling.max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        copies = 1 if sampling.greedy else sampling.n  # greedy samples are identical: decode once
        if sampling.greedy:
            kwargs["do_sample"] = False
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0,
                          num_return_sequences=copies)
        if sampling.stop:
            kwargs.update(stop_strings=sampling.stop, tokenizer=self.tokenizer)
        output = self.composed.generate(weights, **encoded, **kwargs)
        rows = output[:, encoded["input_ids"].shape[1] :].tolist()
        completions, tokens = [], 0
        for i in range(len(prompts)):
            samples = [self._completion(row, sampling) for row in rows[i * copies : (i + 1) * copies]]
            tokens += sum(c.tokens for c in samples)
            completions.append(samples * sampling.n if copies == 1 else samples)
        prompt_tokens = int(encoded["attention_mask"].sum())
        return completions, GenerationStats(prompt_tokens=prompt_tokens, completion_tokens=tokens)

    def _completion(self, row: list[int], sampling: SamplingParams) -> Completion:
        """A sample ran out of room ('length') only when it used every new token without reaching a
        stop token or a stop string."""
        length = self._generated_length(row)
        text = self.tokenizer.decode(row[:length], skip_special_tokens=True)
        cut = truncate_at_stop(text, sampling.stop)
        stopped = len(cut) < len(text) or (length > 0 and row[length - 1] in self.stop_ids)
        ran_out = not stopped and length >= sampling.max_new_tokens
        return Completion(cut, length, "length" if ran_out else "stop")

    def _generated_length(self, row: list[int]) -> int:
        return generated_length(row, self.stop_ids, self.tokenizer.pad_token_id)

    def materialize(self, problem: str, out_dir: str | os.PathLike[str]) -> Path:
        """One problem's customized solver as a plain peft adapter folder (rank E*r)."""
        from bdc_ray.customize.materialized import materialize

        return materialize(self.composed.experts, self.composed.module_names, self.routing([problem])[0], out_dir)


def _texts(completions: list[list[Completion]]) -> Texts:
    return [[c.text for c in samples] for samples in completions]


def load_customized(hypernet_dir: str, **kwargs) -> CustomizedSolver:
    """CustomizedSolver.load: base + experts (as recorded in the checkpoint) + hypernetwork."""
    return CustomizedSolver.load(hypernet_dir, **kwargs)
