"""Incremental decoding over the composed model: what lets Serve stream, and drop a row mid-generation.

`model.generate` decodes a batch to its end: every row stays in the batch until the last one has
finished, and nothing comes out before. Serving needs more: each row's text as it is produced (SSE
streaming), each row out of the batch the moment it ends or its client goes away, and every row
with its own settings (temperature, top_p, max tokens, stop strings, seed, logprobs) in the SAME
forward pass, its own routing weights riding along as in `ComposedLoRA.generate`, and new rows
joining a batch that is already decoding. So this is the decode loop itself, a `RunningBatch`:
rows join with one prefill of their left-padded prompts into a KV cache of their own
(transformers' DynamicCache), which is then merged into the running one (the shorter side
left-padded, masked); every step is one forward over all rows in the batch; when a row leaves,
the cache, the attention mask and the routing weights are cut down to the others
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

import inspect
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from bdc_ray.customize import Completion, ComposedLoRA, TokenLogprob

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
    """Rows that joined."""
    prefills: int = 0
    """Groups of rows that joined (one prefill forward each)."""
    joined_running: int = 0
    """Of them, groups that joined a batch already decoding."""
    steps: int = 0
    """Decode steps (one forward each, after the prefills)."""
    row_steps: int = 0
    """Rows in those steps, summed: the tokens decoded."""
    max_running: int = 0
    """Most rows decoding together."""
    cancelled: list[CancelledRow] = field(default_factory=list)


class Unjoinable(RuntimeError):
    """The model's cache layers cannot be merged (sliding windows, quantized caches): rows decode apart."""


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
    """The model-side pieces shared by every batch: forward, token choice, text decoding."""

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

    def batch(self, stats: DecodeStats | None = None) -> RunningBatch:
        return RunningBatch(self, stats if stats is not None else DecodeStats())

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
        with torch.inference_mode(), self.composed.routing(weights):
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


def _left_pad(t: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    if n == 0:
        return t
    shape = list(t.shape)
    shape[dim] = n
    return torch.cat([t.new_zeros(shape), t], dim=dim)


class RunningBatch:
    """Rows decoding together. Between steps, rows may join (`join`) and leave (they end, or their
    `cancel` is set). Invariant between calls: every row has the logits of its next token."""

    def __init__(self, decoder: Decoder, stats: DecodeStats) -> None:
        self.decoder = decoder
        self.stats = stats
        self.rows: list[_Row] = []
        self._cache = None
        self._mask = self._positions = self._weights = self._logits = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def joinable(self) -> bool:
        """Whether rows can join now: always when empty; else when every cache layer can be merged."""
        from transformers.cache_utils import DynamicLayer

        return not self.rows or all(type(layer) is DynamicLayer for layer in self._cache.layers)

    def join(self, ids: list[int], specs: Sequence[RowSpec], weights: torch.Tensor) -> list[RowUpdate]:
        """Prefill `specs` (their rows are called `ids` in updates) and add them to the batch; rows
        already cancelled never run (their final updates are returned)."""
        if weights.shape[0] != len(specs):
            raise ValueError(f"{weights.shape[0]} weight rows for {len(specs)} rows")
        decoder, device = self.decoder, self.decoder.composed.device
        rows = [_Row(i, spec, decoder._decode, device) for i, spec in zip(ids, specs)]
        gone = [r for r in rows if r.spec.cancel is not None and r.spec.cancel.is_set()]
        early = [self._cancelled(r) for r in gone]
        alive = [k for k, r in enumerate(rows) if r not in gone]
        if not alive:
            return early
        if self.rows and not self.joinable:
            raise Unjoinable("rows cannot join this batch while it decodes: wait until it is empty")
        keep = torch.tensor(alive, device=device)
        weights = weights.to(device)[keep]
        ids_t, mask = decoder._left_padded([rows[k].spec.prompt_ids for k in alive], device)
        positions = (mask.cumsum(-1) - 1).clamp_min(0)
        from transformers import DynamicCache

        cache = DynamicCache(config=decoder.model.config)
        logits = decoder._forward(ids_t, mask, positions, cache, weights)
        self.stats.rows += len(alive)
        self.stats.prefills += 1
        if self.rows:
            self.stats.joined_running += 1
            self._merge(cache, mask, positions[:, -1:], weights, logits)
        else:
            self._cache, self._mask, self._positions, self._weights, self._logits = (
                cache, mask, positions[:, -1:], weights, logits)
        self.rows += [rows[k] for k in alive]
        self.stats.max_running = max(self.stats.max_running, len(self.rows))
        return early

    def _merge(self, cache, mask, positions, weights, logits) -> None:
        """Append rows with their own cache: the shorter of the two sequences is left-padded (masked)."""
        mine, theirs = self._mask.shape[1], mask.shape[1]
        width = max(mine, theirs)
        for layer, other in zip(self._cache.layers, cache.layers):
            layer.keys = torch.cat([_left_pad(layer.keys, width - mine, -2), _left_pad(other.keys, width - theirs, -2)])
            layer.values = torch.cat([_left_pad(layer.values, width - mine, -2),
                                      _left_pad(other.values, width - theirs, -2)])
        self._mask = torch.cat([_left_pad(self._mask, width - mine, 1), _left_pad(mask, width - theirs, 1)])
        self._positions = torch.cat([self._positions, positions])
        self._weights = torch.cat([self._weights, weights])
        self._logits = torch.cat([self._logits, logits])

    def step(self, on_step: Callable[[list[RowUpdate]], None]) -> None:
        """One token for every row; rows that end, or whose client has gone, leave before the forward
        that computes the next logits of the others. `on_step` sees the tokens first, so a cancel it
        sets is honoured before that forward."""
        decoder = self.decoder
        self.stats.steps += 1
        self.stats.row_steps += len(self.rows)
        ended = time.monotonic()
        updates, staying = [], []
        for k, row in enumerate(self.rows):
            token, logprob = decoder._choose(self._logits[k], row)
            update = row.advance(token, logprob, decoder.stop_ids, ended)
            if update is not None:
                updates.append(update)
            if update is None or update.done is None:
                staying.append(k)
        if updates:
            on_step(updates)
        gone = [k for k in staying if self.rows[k].spec.cancel is not None and self.rows[k].spec.cancel.is_set()]
        if gone:
            on_step([self._cancelled(self.rows[k]) for k in gone])
            staying = [k for k in staying if k not in gone]
        if not staying:
            self.rows, self._cache = [], None
            self._mask = self._positions = self._weights = self._logits = None
            return
        if len(staying) < len(self.rows):
            keep = torch.tensor(staying, device=self._mask.device)
            self._cache.batch_select_indices(keep)
            self._mask, self._positions, self._weights = self._mask[keep], self._positions[keep], self._weights[keep]
            self.rows = [self.rows[k] for k in staying]
        ids = torch.tensor([[row.last] for row in self.rows], device=self._mask.device)
        self._mask = torch.cat([self._mask, self._mask.new_ones((len(self.rows), 1))], dim=1)
        self._positions = self._positions + 1
        self._logits = decoder._forward(ids, self._mask, self._positions, self._cache, self._weights)

    def _cancelled(self, row: _Row) -> RowUpdate:
        self.stats.cancelled.append(CancelledRow(row.index, row.tokens, row.after_cancel))
        return row.finish("cancelled")
