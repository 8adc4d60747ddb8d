"""The OpenAI-compatible server's own HTTP contract, spoken to with plain httpx."""

from __future__ import annotations

import httpx

from bdc_ray.llm import SamplingParams
from bdc_ray.llm.openai_server import ChatMessage, join_contents


def test_models_lists_base_and_adapters(model_server) -> None:
    reply = httpx.get(f"{model_server.base_url}/models").json()
    assert [m["id"] for m in reply["data"]] == ["tiny", "alpha", "beta"]
    assert httpx.get(f"http://127.0.0.1:{model_server.port}/health").json() == {"status": "ok"}


def test_prompt_list_gives_n_choices_per_prompt_in_order(model_server, hf_llm) -> None:
    prompts = ["def mul_", "def"]
    body = {"model": "alpha", "prompt": prompts, "n": 2, "temperature": 0, "max_tokens": 12, "stop": "\n"}
    reply = httpx.post(f"{model_server.base_url}/completions", json=body).json()
    expected = hf_llm.generate(prompts, SamplingParams(n=2, max_new_tokens=12, stop=["\n"]), adapter="alpha")
    assert [c["text"] for c in reply["choices"]] == [t for per_prompt in expected for t in per_prompt]
    assert [c["index"] for c in reply["choices"]] == [0, 1, 2, 3]
    assert reply["object"] == "text_completion" and reply["model"] == "alpha"
    usage = reply["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_invalid_requests_get_openai_style_400s(model_server) -> None:
    url = f"{model_server.base_url}/completions"
    for body, field in [
        ({"model": "tiny", "prompt": "x", "n": 0}, "n"),
        ({"model": "tiny", "prompt": "x", "temperature": -1}, "temperature"),
        ({"model": "tiny"}, "prompt"),
    ]:
        reply = httpx.post(url, json=body)
        assert reply.status_code == 400
        assert field in reply.json()["error"]["message"]
    streaming = httpx.post(url, json={"model": "tiny", "prompt": "x", "stream": True})
    assert streaming.status_code == 400 and "stream" in streaming.json()["error"]["message"]
    chat = httpx.post(f"{model_server.base_url}/chat/completions", json={"model": "tiny", "messages": []})
    assert chat.status_code == 400


def test_chat_joins_message_contents() -> None:
    messages = [ChatMessage(role="system", content="You write Python."), ChatMessage(role="user", content="def")]
    assert join_contents(messages) == "You write Python.\ndef"
    assert join_contents([ChatMessage(role="user", content="def f(")]) == "def f("
