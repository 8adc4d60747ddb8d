"""Chat messages to a prompt: the plain template (the training format) and a tokenizer's own chat template."""

import pytest

from bdc_ray.problems.prompt_format import prompt_text
from bdc_ray.serve.api import APIError, ChatMessage
from bdc_ray.serve.chat import chat_prompt, plain_prompt, routing_text

TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def _messages(*pairs):
    return [ChatMessage(role=role, content=content) for role, content in pairs]


@pytest.fixture(scope="module")
def tokenizer(demo):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo.base_model)


def test_one_user_message_is_prompted_as_the_solver_was_trained(tokenizer):
    messages = _messages(("user", "Reverse the string s."))
    assert not tokenizer.chat_template
    assert chat_prompt(messages, tokenizer) == (prompt_text("Reverse the string s."), True)
    assert routing_text(messages) == "Reverse the string s."


def test_the_plain_template_of_a_conversation():
    messages = [
        ChatMessage(role="system", content="Write Python."),
        ChatMessage(role="developer", content=[{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}]),
        ChatMessage(role="user", content="Add a and b."),
        ChatMessage(role="assistant", content="def add(a, b):\n    return a + b"),
        ChatMessage(role="user", content="Now subtract."),
    ]
    assert plain_prompt(messages) == (
        "Write Python.\nBe brief.\n\n### Task\nAdd a and b.\n### Solution\ndef add(a, b):\n    return a + b\n"
        "### Task\nNow subtract.\n### Solution\n"
    )
    assert routing_text(messages) == "Now subtract."


def test_a_chat_template_renders_with_the_generation_prompt_and_no_added_specials(tokenizer):
    templated = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    templated.chat_template = TEMPLATE
    prompt, specials = chat_prompt(_messages(("developer", "Be brief."), ("user", "Add.")), templated)
    assert prompt == "<|system|>Be brief.\n<|user|>Add.\n<|assistant|>" and specials is False


def test_a_template_that_refuses_the_messages_is_the_clients_error(tokenizer):
    strict = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    strict.chat_template = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}"
    with pytest.raises(APIError, match="chat template refused these messages: user first") as err:
        chat_prompt(_messages(("assistant", "hi"), ("user", "x")), strict)
    assert err.value.status == 400 and err.value.param == "messages"
