"""Incremental decoding over the composed model: what lets Serve stream, and drop a row mid-generation.

`model.generate` decodes a batch to its end: every row stays in the batch until the last one has
finished, and nothing comes out before. Serving needs more: each row's text as it is produced (SSE
streaming), each row out of the batch the moment it ends or its client goes away, and every row
with its own settings (temperature, top_p, max tokens, stop strings, seed, logprobs) in the SAME
forward pass, its own routing weights riding along as in `ComposedLoRA.generate`. So this is the
decode loop itself: one prefill of the left-padded prompts into the model's KV cache
(transformers' DynamicCache), then one forward per step over the rows still alive; when a row
leaves, the cache, the attention mask and the routing weights are cut down to the others
(`Cache.batch_select_indices`). What it adds to the model's own forward is per-row bookkeeping.
No Ray here: tests drive it directly.

Greedy rows produce the tokens `model.generate(do_sample=False)` produces (a test holds it to that).
Sampled rows draw from their own torch.Generator, seeded from the request's seed and the sample's
index when a seed is given, so a seeded sample depends on its seed and not on its batch-mates. The
request's settings are the whole sampling: a model's generation_config defaults (repetition
penalty, top_k) are not applied, as in OpenAI's API. Logprobs are the model's own (log-softmax of
its logits, before temperature and top_p), as vLLM reports them by default.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from bdc_ray.customize.inject import ComposedLoRA
from bdc_ray.customize.solver import Completion, TokenLogprob

HELD_BACK = "\ufffd"
"""What a byte-level tokenizer decodes an incomplete UTF-8 sequence to: held until the rest arrives."""


class Cancel:
    """Set by whoever serves a row's client when the client goes away; the decode loop reads it
    between steps and takes the row out of the batch. Remembers when it was set, so the tokens
    decoded after that moment can be counted."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.at: float | None = None

    def set(self) -> None:
        if not self._event.is_set():
            self.at = time.monotonic()
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class RowSpec:
    """One row to decode: its prompt tokens and its own settings."""

    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    """The row's own generator seed; None: drawn from torch's global generator."""
    logprobs: int | None = None
    """None: no logprobs; k >= 0: each token's logprob and the k likeliest tokens."""
    cancel: Cancel | None = None


@dataclass(frozen=True)
class RowUpdate:
    """What one step added to one row: new text (possibly empty), the logprobs of the tokens that
    text completes, and the finished sample when the row has ended."""

    row: int
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()
    done: Completion | None = None


@dataclass(frozen=True)
class CancelledRow:
    row: int
    tokens: int
    """Tokens the row produced in all."""
    tokens_after_cancel: int
    """Of them, those whose forward pass ended after the cancel was set (at most one step's)."""


@dataclass
class DecodeStats:
    rows: int = 0
    steps: int = 0
    """Forward passes, the prefill included."""
    row_steps: int = 0
    """Rows in those passes, summed: the tokens computed."""
    cancelled: list[CancelledRow] = field(default_factory=list)


class IncrementalText:
    """A row's text as its tokens arrive, released only as far as later tokens cannot change it.

    Each token re-decodes the row (decoding is not token-by-token additive: byte-level tokens can
    split a character, and a stop string can span tokens). Released text never contains a stop
    string, nor the start of one that the next tokens might complete, nor a trailing incomplete
    character; the concatenation of all releases is the final text whenever the tokenizer's
    decoding of a longer row extends that of a shorter one (byte-level BPE and sentencepiece do).
    """

    def __init__(self, decode: Callable[[list[int]], str], stop: Sequence[str] = ()) -> None:
        self._decode = decode
        self.stop = [s for s in stop if s]
        self._longest = max(map(len, self.stop), default=0)
        self.ids: list[int] = []
        self.full = ""
        self.cut: int | None = None
        """Where the first stop string starts in `full`, once one has appeared."""
        self.released = ""

    def add(self, token: int) -> int:
        """Append a token; returns the offset in the text where its characters start."""
        start = len(self.full)
        self.ids.append(token)
        self.full = self._decode(self.ids)
        if self.stop and self.cut is None:
            begin = max(0, start - self._longest + 1)  # a stop string may end in this token's text
            hits = [i for s in self.stop if (i := self.full.find(s, begin)) != -1]
            self.cut = min(hits) if hits else None
        return start

    @property
    def text(self) -> str:
        return self.full if self.cut is None else self.full[: self.cut]

    def release(self, final: bool = False) -> str:
        """Text that became certain since the last release (all of the rest when `final`)."""
        target = self.text
        if not final and self.cut is None:
            target = target.rstrip(HELD_BACK)
            target = target[: len(target) - self._stop_prefix(target)]
        if len(target) <= len(self.released) or not target.startswith(self.released):
            return ""
        delta = target[len(self.released) :]
        self.released = target
        return delta

    def _stop_prefix(self, text: str) -> int:
        """Length of the longest end of `text` that begins a stop string."""
        for k in range(min(self._longest - 1, len(text)), 0, -1):
            tail = text[-k:]
            if any(s.startswith(tail) for s in self.stop):
                return k
        return 0


class _Row:
    """A row in flight: its text, pending logprobs, generator and end."""

    def __init__(self, index: int, spec: RowSpec, decode: Callable[[list[int]], str], device: torch.device) -> None:
        self.index = index
        self.spec = spec
        self.text = IncrementalText(decode, spec.stop)
        self.tokens = 0
        self.last = -1
        self.after_cancel = 0
        self._pending: list[tuple[int, TokenLogprob]] = []
        self._logprobs: list[TokenLogprob] = []
        self.generator: torch.Generator | None = None
        if spec.temperature > 0:
            seed = spec.seed if spec.seed is not None else int(torch.randint(0, 2**62, (1,)))
            self.generator = torch.Generator(device=device).manual_seed(seed % 2**63)

    def advance(self, token: int, logprob: TokenLogprob | None, stop_ids: set[int], forward_end: float) -> RowUpdate | None:
        self.tokens += 1
        self.last = token
        cancel = self.spec.cancel
        if cancel is not None and cancel.at is not None and cancel.at < forward_end:
            self.after_cancel += 1
        reason = None
        if token in stop_ids:
            reason = "stop"
        else:
            offset = self.text.add(token)
            if logprob is not None:
                self._pending.append((offset, logprob))
            if self.text.cut is not None:
                reason = "stop"
            elif self.tokens >= self.spec.max_new_tokens:
                reason = "length"
        if reason is not None:
            return self.finish(reason)
        delta = self.text.release()
        ready = [lp for offset, lp in self._pending if offset < len(self.text.released)]
        self._pending = self._pending[len(ready) :]
        self._logprobs += ready
        return RowUpdate(self.index, delta, tuple(ready)) if delta or ready else None

    def finish(self, reason: str) -> RowUpdate:
        """The row's last update: the rest of its text and the logprobs of the tokens in it."""
        delta = self.text.release(final=True)
        end = len(self.text.text)
        ready = [lp for offset, lp in self._pending if self.text.cut is None or offset < end]
        self._pending = []
        self._logprobs += ready
        done = Completion(self.text.text, self.tokens, reason,  # type: ignore[arg-type]
                          tuple(self._logprobs) if self.spec.logprobs is not None else None)
        return RowUpdate(self.index, delta, tuple(ready), done)


class Decoder:
    """The decode loop over one composed model. Not thread-safe: the caller runs one `run` at a
    time (routing weights are state of the shared model)."""

    def __init__(self, composed: ComposedLoRA, tokenizer, stop_ids: set[int]) -> None:
        self.composed = composed
        self.model = composed.model
        self.tokenizer = tokenizer
        self.stop_ids = set(stop_ids)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.stop_ids, default=0)
        params = inspect.signature(self.model.forward).parameters
        # transformers 5 renamed past_key_values to cache; older releases know only the first.
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep_last = "logits_to_keep" in params
        self._pieces: dict[int, str] = {}

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _piece(self, token: int) -> str:
        if token not in self._pieces:
            self._pieces[token] = self.tokenizer.decode([token], skip_special_tokens=False)
        return self._pieces[token]

    def run(self, rows: Sequence[RowSpec], weights: torch.Tensor, on_step: Callable[[list[RowUpdate]], None],
            step_lock: threading.Lock | None = None) -> DecodeStats:
        """Decode every row to its end; `on_step` gets each step's updates as they happen.

        `weights` [len(rows), M, E*r] are the rows' routing weights. A row whose `cancel` is set
        leaves before the next forward (its last update says "cancelled"). `step_lock` is held
        for each step's use of the model and the tokenizer (a forward, then choosing and decoding
        the tokens), and released between steps: two runs on two threads take turns step by step.
        """
        if weights.shape[0] != len(rows):
            raise ValueError(f"{weights.shape[0]} weight rows for {len(rows)} rows")
        stats = DecodeStats(rows=len(rows))
        device = self.composed.device
        states = [_Row(i, spec, self._decode, device) for i, spec in enumerate(rows)]
        gone = [s for s in states if s.spec.cancel is not None and s.spec.cancel.is_set()]
        if gone:
            on_step([self._cancelled(s, stats) for s in gone])
        alive = [s for s in states if s not in gone]
        if not alive:
            return stats
        keep = torch.tensor([s.index for s in alive], device=device)
        weights = weights.to(device)[keep] if len(alive) < len(rows) else weights.to(device)
        ids, mask = self._left_padded([s.spec.prompt_ids for s in alive], device)
        positions = (mask.cumsum(-1) - 1).clamp_min(0)
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        lock = step_lock if step_lock is not None else contextlib.nullcontext()
        with torch.inference_mode():
            with lock:
                logits = self._forward(ids, mask, positions, cache, weights)
            while True:
                stats.steps += 1
                stats.row_steps += len(alive)
                ended = time.monotonic()
                updates, staying = [], []
                with lock:
                    for k, row in enumerate(alive):
                        token, logprob = self._choose(logits[k], row)
                        update = row.advance(token, logprob, self.stop_ids, ended)
                        if update is not None:
                            updates.append(update)
                        if update is None or update.done is None:
                            staying.append(k)
                if updates:
                    on_step(updates)
                gone = [k for k in staying if alive[k].spec.cancel is not None and alive[k].spec.cancel.is_set()]
                if gone:  # clients gone since the last step: out before the next forward
                    on_step([self._cancelled(alive[k], stats) for k in gone])
                    staying = [k for k in staying if k not in gone]
                if not staying:
                    return stats
                if len(staying) < len(alive):
                    keep = torch.tensor(staying, device=device)
                    cache.batch_select_indices(keep)
                    mask, positions, weights = mask[keep], positions[keep], weights[keep]
                    alive = [alive[k] for k in staying]
                ids = torch.tensor([[row.last] for row in alive], device=device)
                mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=1)
                positions = positions[:, -1:] + 1
                with lock:
                    logits = self._forward(ids, mask, positions, cache, weights)

    def _cancelled(self, row: _Row, stats: DecodeStats) -> RowUpdate:
        stats.cancelled.append(CancelledRow(row.index, row.tokens, row.after_cancel))
        return row.finish("cancelled")

    def _left_padded(self, prompts: list[list[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts right-aligned, so every row's next token is at the last position."""
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            if prompt:
                ids[i, width - len(prompt) :] = torch.tensor(prompt)
                mask[i, width - len(prompt) :] = 1
        return ids.to(device), mask.to(device)

    def _forward(self, ids, mask, positions, cache, weights) -> torch.Tensor:
        kwargs = {self._cache_kw: cache, "use_cache": True}
        if self._keep_last:
            kwargs["logits_to_keep"] = 1
        with self.composed.routing(weights):
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, **kwargs)
        return out.logits[:, -1, :].float()

    def _choose(self, logits: torch.Tensor, row: _Row) -> tuple[int, TokenLogprob | None]:
        spec = row.spec
        if row.generator is None:
            token = int(logits.argmax())
        else:
            from transformers.generation.logits_process import TopPLogitsWarper

            scores = logits[None] / spec.temperature
            if spec.top_p < 1.0:
                scores = TopPLogitsWarper(spec.top_p)(None, scores)
            token = int(torch.multinomial(scores.softmax(-1), 1, generator=row.generator))
        if spec.logprobs is None:
            return token, None
        logp = logits.log_softmax(-1)
        top = logp.topk(min(spec.logprobs, logp.shape[-1])) if spec.logprobs > 0 else None
        alternatives = () if top is None else tuple(
            (self._piece(int(t)), float(v)) for v, t in zip(top.values, top.indices)
        )
        return token, TokenLogprob(self._piece(token), float(logp[token]), alternatives)
