"""Chat templates and left truncation: the pure functions (chat.py) and the transformers backend
using them, on the tiny GGUF-converted model (ChatML template, 96-token context)."""

from __future__ import annotations

import logging

import pytest

from bdc_ray.llm.base import SamplingParams
from bdc_ray.llm.chat import count_tokens, fit_prompt, generation_budget, render

QUESTION = "Write a function that adds 3 to a number."
LONG = "".join(f"Write a function that adds {k} to a number.\n" for k in range(1, 40)) + QUESTION


@pytest.fixture(scope="module")
def tokenizer(chat_model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(chat_model)


@pytest.fixture(scope="module")
def chat_llm(chat_model: str):
    from bdc_ray.llm.hf_backend import TransformersLLM

    return TransformersLLM(chat_model, threads=1, chat=True, max_batch_size=4)


@pytest.fixture(scope="module")
def plain_llm(chat_model: str):
    from bdc_ray.llm.hf_backend import TransformersLLM

    return TransformersLLM(chat_model, threads=1, chat=False, max_batch_size=4)


def test_render_is_one_user_turn_ending_where_the_reply_starts(tokenizer) -> None:
    assert render(tokenizer, QUESTION, chat=True) == f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
    assert render(tokenizer, QUESTION, chat=False) == QUESTION


def test_generation_keeps_at_most_half_the_context() -> None:
    assert generation_budget(8192, 512) == 512
    assert generation_budget(256, 256) == 128
    assert generation_budget(3, 10) == 1


def test_a_prompt_that_fits_is_untouched(tokenizer) -> None:
    fitted = fit_prompt(tokenizer, QUESTION, context=96, max_new_tokens=16, chat=True)
    assert (fitted.content, fitted.dropped) == (QUESTION, 0)
    assert fitted.tokens == count_tokens(tokenizer, fitted.text, chat=True)


@pytest.mark.parametrize("chat", [True, False])
def test_a_long_prompt_is_cut_from_the_left_keeping_the_template(tokenizer, chat: bool) -> None:
    fitted = fit_prompt(tokenizer, LONG, context=96, max_new_tokens=16, chat=chat)
    assert fitted.dropped > 0
    assert fitted.tokens <= 96 - 16
    assert LONG.endswith(fitted.content) and fitted.content.endswith(QUESTION)
    assert fitted.text == render(tokenizer, fitted.content, chat)
    assert count_tokens(tokenizer, fitted.text, chat) == fitted.tokens


def test_the_backend_prompts_through_the_template(chat_llm, plain_llm) -> None:
    sampling = SamplingParams(max_new_tokens=8)
    assert chat_llm.chat and not plain_llm.chat
    templated = plain_llm.generate([render(plain_llm.tokenizer, QUESTION, chat=True)], sampling)
    assert chat_llm.generate([QUESTION], sampling) == templated


def test_a_model_without_template_is_prompted_plainly(tiny_model, caplog: pytest.LogCaptureFixture) -> None:
    from bdc_ray.llm.hf_backend import TransformersLLM

    with caplog.at_level(logging.WARNING, logger="bdc_ray.llm.hf_backend"):
        llm = TransformersLLM(tiny_model.path, threads=1, chat=True)
    assert not llm.chat and "no chat template" in caplog.text


def test_over_long_prompts_are_cut_with_a_warning_never_an_error(
    chat_llm, caplog: pytest.LogCaptureFixture
) -> None:
    sampling = SamplingParams(max_new_tokens=500)  # more than the whole context, too
    with caplog.at_level(logging.WARNING, logger="bdc_ray.llm.chat"):
        texts, stats = chat_llm.generate_with_stats([LONG, QUESTION], sampling)
    assert "1 of 2 prompt(s) longer than the context of 96 tokens were cut from the left" in caplog.text
    fitted = fit_prompt(chat_llm.tokenizer, LONG, context=96, max_new_tokens=500, chat=True)
    assert texts[0] == chat_llm.generate([fitted.content], sampling)[0]
    # Prompt plus generation never run past the context.
    question_tokens = count_tokens(chat_llm.tokenizer, render(chat_llm.tokenizer, QUESTION, True), True)
    assert stats.completion_tokens <= (96 - fitted.tokens) + (96 - question_tokens)
