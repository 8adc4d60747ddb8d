"""Chat messages -> one prompt, and the problem text the hypernetwork routes on.

A model whose tokenizer has a chat template gets its own template (`apply_chat_template` with the
generation prompt added; the rendered text carries the template's special tokens, so the tokenizer
adds none). A model without one (the tiny models, the demo, any base model) gets the PLAIN
template, which is the format the experts and the hypernetwork were trained on:

    <system and developer messages, one per line, then a blank line>
    ### Task
    <user message>
    ### Solution
    <assistant message>
    ### Task
    <next user message>
    ### Solution

so a single user message is prompted exactly as /solve prompts a problem statement. The routing
text is the last user message (or the request's `problem`), as a completion-style client would
send the statement itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from bdc_ray.problems.prompt_format import SOLUTION_HEADER, TASK_HEADER
from bdc_ray.serve.api import APIError, ChatMessage

INSTRUCTION_ROLES = ("system", "developer")


def routing_text(messages: Sequence[ChatMessage]) -> str:
    """The last user message: the problem a chat client asks about."""
    return next(m.text for m in reversed(messages) if m.role == "user")


def plain_prompt(messages: Sequence[ChatMessage]) -> str:
    """The documented template for models without a chat template (see the module docstring)."""
    instructions = [m.text for m in messages if m.role in INSTRUCTION_ROLES]
    parts = ["\n".join(instructions) + "\n\n"] if instructions else []
    for m in messages:
        if m.role == "user":
            parts.append(f"{TASK_HEADER}{m.text}\n{SOLUTION_HEADER}")
        elif m.role == "assistant":
            parts.append(m.text if m.text.endswith("\n") else m.text + "\n")
    return "".join(parts)


def chat_prompt(messages: Sequence[ChatMessage], tokenizer) -> tuple[str, bool]:
    """(prompt, whether the tokenizer should add its special tokens to it)."""
    if not getattr(tokenizer, "chat_template", None):
        return plain_prompt(messages), True
    # Many templates know only system/user/assistant: developer instructions are system ones.
    conversation = [{"role": "system" if m.role == "developer" else m.role, "content": m.text} for m in messages]
    try:
        rendered = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    except Exception as err:  # noqa: BLE001 - a template raises what its author chose (jinja's TemplateError, ...)
        raise APIError(400, f"the model's chat template refused these messages: {err}", param="messages") from None
    return rendered, False
