"""Local generation with transformers, optionally through several named peft LoRA adapters.

The default backend: it runs the project's tiny CPU models in tests and any HF checkpoint on a
GPU. All adapters live in ONE PeftModel over one copy of the base weights, so switching expert
per request batch costs nothing but `set_adapter`. With `chat`, prompts go through the model's
own chat template; prompts that do not fit the model's context are cut from the left (chat.py).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

from bdc_ray.llm.base import (
    BaseLLM,
    GenerationStats,
    SamplingParams,
    Texts,
    context_length,
    generated_length,
    truncate_at_stop,
)
from bdc_ray.llm.chat import fit_prompt, has_chat_template, warn_truncated
from bdc_ray.threads import configure_torch_threads

log = logging.getLogger(__name__)


class TransformersLLM(BaseLLM):
    """`AutoModelForCausalLM` + `AutoTokenizer` from a local folder or hub name.

    Calls are serialised by a lock: one model, one forward pass at a time, which is also what
    makes `set_adapter` and seeding safe when several threads share the backend.
    """

    def __init__(
        self,
        path: str,
        *,
        adapters: dict[str, str] | None = None,
        device: str = "auto",
        dtype: str = "auto",
        threads: int | None = None,
        max_batch_size: int = 16,
        chat: bool = False,
        context: int | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name or f"transformers:{path}"
        self.device = _resolve_device(device)
        if self.device.type == "cpu":
            configure_torch_threads(threads)
        self.max_batch_size = max_batch_size

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        # Left padding keeps every prompt's last token at the same position, where generation starts.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            if self.tokenizer.eos_token is None:
                raise ValueError(f"tokenizer of {path!r} has neither a pad nor an eos token; batching needs one")
            self.tokenizer.pad_token = self.tokenizer.eos_token

        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=_resolve_dtype(dtype, self.device))
        self.model.to(self.device).eval()
        self._stop_ids = _eos_ids(self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id)
        self.chat = chat and has_chat_template(self.tokenizer)
        if chat and not self.chat:
            log.warning("%s: chat requested but the tokenizer of %r has no chat template; prompts go in as they are",
                        self.name, path)
        self.context = context or config_context(self.model.config)
        self._adapters: dict[str, str] = {}
        self._lock = threading.Lock()
        for adapter_name, adapter_path in (adapters or {}).items():
            self.load_adapter(adapter_name, adapter_path)

    @property
    def adapters(self) -> tuple[str, ...]:
        return tuple(self._adapters)

    def load_adapter(self, name: str, path: str) -> None:
        """Add a peft LoRA folder under `name`; usable at any time, e.g. when a new expert is trained."""
        with self._lock:
            if name in self._adapters:
                raise ValueError(f"adapter {name!r} is already loaded (from {self._adapters[name]})")
            if self._adapters:
                self.model.load_adapter(path, adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name)
            # peft places new adapter weights on its own guess of the device, not necessarily the model's.
            self.model.to(self.device).eval()
            self._adapters[name] = path

    def generate_with_stats(
        self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None
    ) -> tuple[Texts, GenerationStats]:
        start = time.perf_counter()
        if not prompts:
            return [], GenerationStats()
        # Greedy samples are identical: decode each prompt once and repeat the text n times.
        copies = 1 if sampling.greedy else sampling.n
        texts: Texts = [[] for _ in prompts]
        completion_tokens = 0
        with self._lock, torch.inference_mode(), self._adapter_enabled(adapter):
            # Under the lock: a fast tokenizer's padding setting is state of its Rust backend, so an
            # unpadded call from another thread mid-batch makes a padded one return ragged rows.
            fitted = [
                fit_prompt(self.tokenizer, p, context=self.context, max_new_tokens=sampling.max_new_tokens, chat=self.chat)
                for p in prompts
            ]
            warn_truncated(self.name, fitted, self.context)
            texts_in = [f.text for f in fitted]
            lengths = [f.tokens for f in fitted]
            # Rows of similar length share a batch, so little compute goes to padding.
            rows = sorted((i for i in range(len(prompts)) for _ in range(copies)), key=lambda i: -lengths[i])
            if sampling.seed is not None:
                set_seed(sampling.seed)
            for begin in range(0, len(rows), self.max_batch_size):
                chunk = rows[begin : begin + self.max_batch_size]
                longest = max(lengths[i] for i in chunk)
                batch_texts, batch_tokens = self._generate_batch([texts_in[i] for i in chunk], sampling, longest)
                completion_tokens += batch_tokens
                for i, text in zip(chunk, batch_texts):
                    texts[i].append(text)
        if copies == 1 and sampling.n > 1:
            texts = [t * sampling.n for t in texts]
        stats = GenerationStats(
            prompt_tokens=sum(lengths), completion_tokens=completion_tokens, seconds=time.perf_counter() - start
        )
        return texts, stats

    def _generate_batch(self, prompts: list[str], sampling: SamplingParams, longest: int) -> tuple[list[str], int]:
        encoded = self.tokenizer(
            prompts, return_tensors="pt", padding=True, return_token_type_ids=False, add_special_tokens=not self.chat
        ).to(self.device)
        # A rendered template holds its special tokens already; no generation runs past the context
        # (positions a model was never trained on; an absolute-position model would index out of range).
        max_new = max(1, min(sampling.max_new_tokens, self.context - longest))
        kwargs: dict = {
            "max_new_tokens": max_new,
            "pad_token_id": self.tokenizer.pad_token_id,
            "do_sample": not sampling.greedy,
        }
        if not sampling.greedy:
            # top_k=0 switches off transformers' top-k so sampling means what it means on OpenAI and vLLM.
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        if sampling.stop:
            kwargs.update(stop_strings=sampling.stop, tokenizer=self.tokenizer)
        output = self.model.generate(**encoded, **kwargs)
        texts, tokens = [], 0
        for row in output[:, encoded["input_ids"].shape[1] :].tolist():
            length = self._generated_length(row)
            tokens += length
            texts.append(truncate_at_stop(self.tokenizer.decode(row[:length], skip_special_tokens=True), sampling.stop))
        return texts, tokens

    def _generated_length(self, row: list[int]) -> int:
        return generated_length(row, self._stop_ids, self.tokenizer.pad_token_id)

    @contextlib.contextmanager
    def _adapter_enabled(self, adapter: str | None) -> Iterator[None]:
        if adapter is None:
            # The base model is the PeftModel with its adapters switched off, not a second copy.
            with self.model.disable_adapter() if self._adapters else contextlib.nullcontext():
                yield
            return
        if adapter not in self._adapters:
            raise KeyError(f"unknown adapter {adapter!r} for {self.name}; loaded: {sorted(self._adapters)}")
        self.model.set_adapter(adapter)
        yield


def config_context(config) -> int:
    """The model's context, which a backend cannot run without (no default would be safe)."""
    context = context_length(config)
    if context is None:
        raise ValueError(f"the model config ({type(config).__name__}) states no context length; set the backend's context")
    return context


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _resolve_dtype(dtype: str, device: torch.device) -> torch.dtype | str:
    """'auto' keeps the checkpoint's dtype on GPU but computes in float32 on CPU, where half precision is slow."""
    if dtype == "auto":
        return torch.float32 if device.type == "cpu" else "auto"
    resolved = getattr(torch, dtype, None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use 'auto', 'float32', 'bfloat16' or 'float16'")
    return resolved


def _eos_ids(*candidates: int | list[int] | None) -> frozenset[int]:
    ids: set[int] = set()
    for c in candidates:
        if isinstance(c, int):
            ids.add(c)
        elif c:
            ids.update(c)
    return frozenset(ids)
