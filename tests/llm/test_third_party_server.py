"""The OpenAI-compatible backend against a server this project did not write: `transformers serve`
(transformers' own OpenAI-compatible server), started and stopped here, offline, on the tiny
GGUF-converted model. Its completions and chat replies must equal the local transformers
backend's (same weights, greedy), and an over-long prompt, which that server refuses, must be
cut client-side when the backend knows the served context and tokenizer.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bdc_ray.llm.base import SamplingParams
from bdc_ray.llm.openai_backend import OpenAICompatibleLLM, OpenAIHTTPError

QUESTION = "Write a function that adds 3 to a number."
LONG = "".join(f"Write a function that adds {k} to a number.\n" for k in range(1, 40)) + QUESTION
SAMPLING = SamplingParams(max_new_tokens=12)
START_TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def transformers_serve(chat_model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`transformers serve MODEL` on a free loopback port; yields its base URL, stops it afterwards."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [str(Path(sys.executable).parent / "transformers"), "serve", chat_model, "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu", "--dtype", "float32", "--log-level", "warning"]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"transformers serve exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def local(chat_model: str):
    from bdc_ray.llm.hf_backend import TransformersLLM

    return {chat: TransformersLLM(chat_model, threads=1, chat=chat) for chat in (False, True)}


@pytest.mark.parametrize("chat", [False, True], ids=["completions", "chat"])
def test_replies_equal_the_local_backend(transformers_serve: str, chat_model: str, local, chat: bool) -> None:
    client = OpenAICompatibleLLM(transformers_serve, chat_model, chat=chat, timeout_s=120)
    texts, stats = client.generate_with_stats([QUESTION], SAMPLING)
    assert texts == local[chat].generate([QUESTION], SAMPLING)
    assert stats.completion_tokens > 0 and stats.prompt_tokens > 0


def test_over_long_prompts_are_refused_by_the_server_and_cut_by_the_client(
    transformers_serve: str, chat_model: str, local
) -> None:
    plain = OpenAICompatibleLLM(transformers_serve, chat_model, chat=True, timeout_s=120, max_retries=0)
    with pytest.raises(OpenAIHTTPError) as refused:
        plain.generate([LONG], SAMPLING)
    assert refused.value.status_code == 400
    cutting = OpenAICompatibleLLM(
        transformers_serve, chat_model, chat=True, timeout_s=120, max_retries=0, context=96, tokenizer=chat_model
    )
    # The client cuts the way the local backend does, so both read the same prompt.
    assert cutting.generate([LONG], SAMPLING) == local[True].generate([LONG], SAMPLING)
