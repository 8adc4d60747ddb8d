"""The OpenAI-compatible backend against real HTTP servers on 127.0.0.1.

One server serves the tiny model (bdc_ray.llm.openai_server); another injects faults (429s,
400s, slow answers) and records what it saw, so retries, errors, timeouts and the concurrency
bound are observed on the wire, not mocked.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import defaultdict

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bdc_ray.llm import SamplingParams
from bdc_ray.llm.openai_backend import (
    OpenAICompatibleLLM,
    OpenAIConnectionError,
    OpenAIHTTPError,
    OpenAITimeoutError,
)
from bdc_ray.llm.openai_server import create_app

GREEDY = SamplingParams(max_new_tokens=20)
PROMPTS = ["def add_3(x):\n    return", "def mul_", "def", "def sub_7("]


def test_completions_equal_the_local_backend(model_server, hf_llm) -> None:
    client = OpenAICompatibleLLM(model_server.base_url, "tiny")
    params = GREEDY.model_copy(update={"n": 2, "stop": ["\n"]})
    texts, stats = client.generate_with_stats(PROMPTS, params)
    assert texts == hf_llm.generate(PROMPTS, params)
    assert stats.prompt_tokens == hf_llm.generate_with_stats(PROMPTS, params)[1].prompt_tokens
    assert stats.completion_tokens > 0


def test_chat_equals_the_local_backend(model_server, hf_llm) -> None:
    client = OpenAICompatibleLLM(model_server.base_url, "tiny", chat=True)
    assert client.generate(PROMPTS, GREEDY) == hf_llm.generate(PROMPTS, GREEDY)


def test_adapter_is_the_model_name(model_server, hf_llm) -> None:
    client = OpenAICompatibleLLM(model_server.base_url, "tiny")
    assert client.generate(PROMPTS[:2], GREEDY, adapter="beta") == hf_llm.generate(PROMPTS[:2], GREEDY, adapter="beta")
    with pytest.raises(OpenAIHTTPError) as info:
        client.generate(PROMPTS[:1], GREEDY, adapter="gamma")
    assert info.value.status_code == 404 and info.value.attempts == 1 and "gamma" in info.value.message


def test_async_calls_share_one_session(model_server, hf_llm) -> None:
    client = OpenAICompatibleLLM(model_server.base_url, "tiny")

    async def run() -> list:
        try:
            return await asyncio.gather(*(client.agenerate([p], GREEDY) for p in PROMPTS))
        finally:
            await client.aclose()

    assert [t for [t] in asyncio.run(run())] == hf_llm.generate(PROMPTS, GREEDY)


class FaultServer:
    """Each test picks a fresh path prefix; the handler behaves by its first segment and counts calls."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = defaultdict(int)
        self.in_flight = 0
        self.max_in_flight = 0
        self.auth_headers: list[str | None] = []
        app = FastAPI()

        @app.post("/{behaviour}/{run}/v1/completions")
        async def completions(behaviour: str, run: str, request: Request) -> JSONResponse:
            key = f"{behaviour}/{run}"
            self.calls[key] += 1
            self.auth_headers.append(request.headers.get("authorization"))
            body = await request.json()
            if behaviour == "flaky" and self.calls[key] <= 2:
                return JSONResponse({"error": {"message": "slow down"}}, status_code=429, headers={"Retry-After": "0"})
            if behaviour == "overloaded":
                return JSONResponse({"error": {"message": "rate limited"}}, status_code=429)
            if behaviour == "crashy" and self.calls[key] == 1:
                return JSONResponse({"detail": "worker died"}, status_code=503)
            if behaviour == "bad":
                return JSONResponse(
                    {"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}}, status_code=400
                )
            if behaviour == "slow":
                await asyncio.sleep(1.0)
            if behaviour == "busy":
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                await asyncio.sleep(0.1)
                self.in_flight -= 1
            choices = [{"index": i, "text": f"{body['prompt']}#{i}", "finish_reason": "stop"} for i in range(body["n"])]
            return JSONResponse({"choices": choices, "usage": {"prompt_tokens": 1, "completion_tokens": body["n"]}})

        self.app = app

    def client(self, server, behaviour: str, **kwargs) -> tuple[OpenAICompatibleLLM, str]:
        run = uuid.uuid4().hex
        base_url = f"http://127.0.0.1:{server.port}/{behaviour}/{run}/v1"
        kwargs.setdefault("backoff_base_s", 0.01)
        return OpenAICompatibleLLM(base_url, "m", **kwargs), f"{behaviour}/{run}"


@pytest.fixture(scope="module")
def faults(background_server):
    fault_server = FaultServer()
    with background_server(fault_server.app) as server:
        yield fault_server, server


def test_429_is_retried_honouring_retry_after(faults) -> None:
    fault_server, server = faults
    client, key = fault_server.client(server, "flaky", max_retries=4, backoff_base_s=30.0)
    # A 30 s backoff would blow the test's time: only Retry-After: 0 keeps it fast.
    assert client.generate(["p"], SamplingParams(n=2)) == [["p#0", "p#1"]]
    assert fault_server.calls[key] == 3


def test_5xx_is_retried_with_backoff(faults) -> None:
    fault_server, server = faults
    client, key = fault_server.client(server, "crashy", max_retries=2)
    assert client.generate(["q"], SamplingParams()) == [["q#0"]]
    assert fault_server.calls[key] == 2


def test_retries_run_out_with_a_clear_error(faults) -> None:
    fault_server, server = faults
    client, key = fault_server.client(server, "overloaded", max_retries=2)
    with pytest.raises(OpenAIHTTPError, match="HTTP 429 .* after 3 attempt.*rate limited") as info:
        client.generate(["p"], SamplingParams())
    assert info.value.url == client.url
    assert fault_server.calls[key] == 3


def test_400_fails_at_once_with_the_servers_message(faults) -> None:
    fault_server, server = faults
    client, key = fault_server.client(server, "bad", max_retries=4)
    with pytest.raises(OpenAIHTTPError) as info:
        client.generate(["p"], SamplingParams())
    error = info.value
    assert (error.status_code, error.attempts, error.message) == (400, 1, "max_tokens is too large")
    assert client.url in str(error) and "HTTP 400" in str(error)
    assert fault_server.calls[key] == 1


def test_timeout_is_reported_clearly(faults) -> None:
    fault_server, server = faults
    client, key = fault_server.client(server, "slow", timeout_s=0.2, max_retries=1)
    with pytest.raises(OpenAITimeoutError, match=r"timed out after 0.2 s on each of 2 attempt") as info:
        client.generate(["p"], SamplingParams())
    assert info.value.url == client.url
    assert fault_server.calls[key] == 2


def test_connection_refused_is_reported_clearly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = OpenAICompatibleLLM(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, backoff_base_s=0.01)
    with pytest.raises(OpenAIConnectionError, match=f"127.0.0.1:{port}/v1/completions failed after 2 attempt"):
        client.generate(["p"], SamplingParams())


def test_concurrency_is_bounded(faults) -> None:
    fault_server, server = faults
    client, key = fault_server.client(server, "busy", max_concurrency=3)
    fault_server.max_in_flight = 0
    prompts = [f"p{i}" for i in range(10)]
    texts, stats = client.generate_with_stats(prompts, SamplingParams())
    assert texts == [[f"p{i}#0"] for i in range(10)]
    assert (stats.prompt_tokens, stats.completion_tokens) == (10, 10)
    assert fault_server.calls[key] == 10
    assert fault_server.max_in_flight == 3


def test_api_key_comes_from_the_named_env_var(faults, monkeypatch: pytest.MonkeyPatch) -> None:
    fault_server, server = faults
    monkeypatch.setenv("BDC_TEST_KEY", "sk-test-123")
    client, _ = fault_server.client(server, "ok", api_key_env="BDC_TEST_KEY")
    client.generate(["p"], SamplingParams())
    assert fault_server.auth_headers[-1] == "Bearer sk-test-123"
    monkeypatch.delenv("BDC_TEST_KEY")
    client.generate(["p"], SamplingParams())
    assert fault_server.auth_headers[-1] is None


def test_server_api_key_is_enforced(hf_llm, background_server, monkeypatch: pytest.MonkeyPatch) -> None:
    with background_server(create_app(hf_llm, "tiny", api_key="sk-right")) as server:
        monkeypatch.setenv("BDC_TEST_KEY", "sk-wrong")
        with pytest.raises(OpenAIHTTPError) as info:
            OpenAICompatibleLLM(server.base_url, "tiny", api_key_env="BDC_TEST_KEY").generate(["def"], GREEDY)
        assert info.value.status_code == 401 and "sk-wrong" not in str(info.value)
        monkeypatch.setenv("BDC_TEST_KEY", "sk-right")
        assert OpenAICompatibleLLM(server.base_url, "tiny", api_key_env="BDC_TEST_KEY").generate(["def"], GREEDY)


@pytest.mark.ray
def test_a_refusal_raised_in_a_ray_worker_reaches_the_caller_whole(model_server, ray_local) -> None:
    """Agents call servers from Ray actors: the server's answer, not "Failed to deserialize
    exception", is what the Boost driver must see and log."""
    import ray

    @ray.remote(num_cpus=0.1)
    def ask(base_url: str) -> list[str]:
        return OpenAICompatibleLLM(base_url, "tiny").generate(PROMPTS[:1], GREEDY, adapter="gamma")

    with pytest.raises(OpenAIHTTPError) as info:
        ray.get(ask.remote(model_server.base_url))
    assert info.value.status_code == 404 and info.value.attempts == 1 and "gamma" in info.value.message
    assert f"HTTP 404 from POST {info.value.url} after 1 attempt(s)" in str(info.value)
    assert info.value.url.startswith(model_server.base_url)
