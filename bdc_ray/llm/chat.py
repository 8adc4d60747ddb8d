"""Prompts as a model expects them: its own chat template, and cut to fit its context.

Callers hand every backend plain prompt strings (the prompt book writes them). An instruction
model was fine-tuned on one conversation format, so a backend with `chat` on renders each prompt
as one user message through the tokenizer's own template (`apply_chat_template`), or sends it as
such to a chat endpoint. A prompt that does not fit the context is cut from the LEFT: the end of
a prompt (the question, the plan so far, the place where the answer starts) is what the model
must see; the start (instructions repeated, the oldest feedback) is what it can best lose. It is
cut with a warning, never refused: one over-long problem must not fail a whole search.

Pure functions over a tokenizer, shared by the transformers backend (which renders and cuts) and
the OpenAI-compatible one (which cuts client-side when it has the served model's tokenizer).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FittedPrompt:
    content: str
    """The prompt as the caller wrote it, or its right-hand part when it was cut."""
    text: str
    """What the model reads: `content`, or `content` rendered through the chat template."""
    tokens: int
    """Token count of `text` as the model receives it."""
    dropped: int
    """Tokens cut from the left of the content (0: it fitted)."""


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render(tokenizer, content: str, chat: bool) -> str:
    """`content` as one user message in the tokenizer's chat template (ending where the assistant's
    reply starts), or unchanged when `chat` is off."""
    if not chat:
        return content
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )


def count_tokens(tokenizer, text: str, chat: bool) -> int:
    """Tokens of a text as the model receives it: a rendered template already holds its special
    tokens; a plain prompt gets the ones the tokenizer adds (BOS...)."""
    return len(tokenizer(text, add_special_tokens=not chat)["input_ids"])


def generation_budget(context: int, max_new_tokens: int) -> int:
    """Tokens a generation may use: what was asked, but at most half the context, so a prompt
    always keeps at least the other half (a model whose context is smaller than max_new_tokens
    still reads its prompt)."""
    return max(1, min(max_new_tokens, context // 2))


def fit_prompt(tokenizer, content: str, *, context: int, max_new_tokens: int, chat: bool) -> FittedPrompt:
    """The prompt cut from the left so that it and `generation_budget(...)` new tokens fit in
    `context`; the template's own tokens (system turn, role markers) are always kept.

    The cut is made on token ids and decoded back to text, which may re-tokenise a few tokens
    differently at the cut; the loop cuts again until the rendered prompt fits."""
    room = context - generation_budget(context, max_new_tokens)
    text = render(tokenizer, content, chat)
    tokens = count_tokens(tokenizer, text, chat)
    if tokens <= room:
        return FittedPrompt(content, text, tokens, 0)
    ids = tokenizer(content, add_special_tokens=False)["input_ids"]
    overhead = tokens - len(ids)
    keep = max(room - overhead, 1)
    while True:
        kept = tokenizer.decode(ids[len(ids) - keep :], skip_special_tokens=False) if keep < len(ids) else content
        text = render(tokenizer, kept, chat)
        tokens = count_tokens(tokenizer, text, chat)
        if tokens <= room or keep <= 1:
            return FittedPrompt(kept, text, tokens, len(ids) - keep)
        keep = max(1, keep - (tokens - room))


def warn_truncated(name: str, fitted: list[FittedPrompt], context: int) -> None:
    """One warning per call that cut anything: how many prompts, and the most cut from one."""
    cut = [f for f in fitted if f.dropped]
    if cut:
        log.warning(
            "%s: %d of %d prompt(s) longer than the context of %d tokens were cut from the left "
            "(up to %d tokens dropped from one)",
            name, len(cut), len(fitted), context, max(f.dropped for f in cut),
        )
