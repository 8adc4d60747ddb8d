"""The OpenAI surface through the official `openai` client against the running Serve app (real Ray Serve,
real HTTP on loopback): chat and completions, streamed and not, n > 1, stop strings, logprobs, errors;
streamed == unstreamed; /solve's progress events; a client that disconnects mid-stream."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest

from bdc_ray.problems.synth import format_prompt, format_target

pytestmark = pytest.mark.ray

MODEL = "bdc-solver"
LONG_PROMPT = "word " * 20
"""A prompt the demo model does not end: its greedy answer runs to LONG_TOKENS (checked in the test)."""
LONG_TOKENS = 180


@pytest.fixture(scope="module")
def client(served):
    return openai.OpenAI(base_url=served.url + "/v1", api_key=served.key, max_retries=0, timeout=120)


def _streamed_texts(stream, kind: str) -> tuple[dict[int, str], dict[int, str], object]:
    """Joined text and finish reason per choice index, and the usage of the last chunk."""
    texts: dict[int, str] = {}
    finish: dict[int, str] = {}
    usage = None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            piece = choice.text if kind == "completion" else (choice.delta.content or "")
            texts[choice.index] = texts.get(choice.index, "") + piece
            if choice.finish_reason is not None:
                finish[choice.index] = choice.finish_reason
    return texts, finish, usage


def test_completions_through_the_official_client(client, demo):
    problem = demo.problems[0]
    reply = client.completions.create(model=MODEL, prompt=format_prompt(problem), max_tokens=120, temperature=0, n=2)
    assert [c.text for c in reply.choices] == [format_target(problem)] * 2
    assert [c.finish_reason for c in reply.choices] == ["stop", "stop"]
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    stopped = client.completions.create(model=MODEL, prompt=format_prompt(problem), max_tokens=120, temperature=0,
                                        stop=["return"])
    assert stopped.choices[0].text == format_target(problem).split("return")[0]
    sampled = client.completions.create(model=MODEL, prompt=format_prompt(problem), max_tokens=30, n=4,
                                        temperature=1.2, seed=11)
    assert len({c.text for c in sampled.choices}) > 1  # n distinct samples, not one copied


def test_chat_through_the_official_client(client, demo):
    problem = demo.problems[1]
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": problem.prompt}],
                                           temperature=0, max_tokens=120)
    message = reply.choices[0].message
    # No chat template in the demo tokenizer: the plain template is the training format.
    assert message.role == "assistant" and message.content == format_target(problem)
    assert reply.object == "chat.completion" and reply.choices[0].finish_reason == "stop"
    logged = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": problem.prompt}],
                                            temperature=0, max_completion_tokens=12, logprobs=True, top_logprobs=2)
    entries = logged.choices[0].logprobs.content
    assert logged.choices[0].finish_reason == "length" and len(entries) == 12
    assert "".join(e.token for e in entries) == logged.choices[0].message.content
    assert all(len(e.top_logprobs) == 2 and e.top_logprobs[0].token == e.token for e in entries)


@pytest.mark.parametrize("kind", ["completion", "chat"])
def test_streamed_equals_unstreamed_at_temperature_zero(client, demo, kind):
    prompts = [demo.problems[2], demo.problems[3]]

    def create(stream: bool, **extra):
        if kind == "completion":
            return client.completions.create(model=MODEL, prompt=[format_prompt(p) for p in prompts], max_tokens=100,
                                              temperature=0, n=2, stop=["\n    return"], stream=stream, **extra)
        return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompts[0].prompt}],
                                              max_tokens=100, temperature=0, n=2, stop=["\n    return"],
                                              stream=stream, **extra)

    plain = create(False)
    texts, finish, usage = _streamed_texts(create(True, stream_options={"include_usage": True}), kind)
    unstreamed = {c.index: (c.text if kind == "completion" else c.message.content) for c in plain.choices}
    assert texts == unstreamed and finish == {c.index: c.finish_reason for c in plain.choices}
    assert usage.model_dump() == plain.usage.model_dump()
    assert all("\n    return" not in t for t in texts.values())


def test_tokens_arrive_as_they_are_generated(served, demo):
    """The answer comes in many chunks, one per decode step (not one chunk at the end)."""
    body = {"model": MODEL, "prompt": format_prompt(demo.problems[0]), "max_tokens": 120, "temperature": 0,
            "stream": True}
    with httpx.stream("POST", served.url + "/v1/completions", json=body, headers=served.headers, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    pieces = [c["choices"][0]["text"] for c in chunks if c["choices"][0]["text"]]
    assert len(pieces) > 20 and "".join(pieces) == format_target(demo.problems[0])


def test_a_seeded_sample_is_the_same_streamed(client, demo):
    kwargs = dict(model=MODEL, prompt=format_prompt(demo.problems[4]), max_tokens=40, temperature=1.0, n=3, seed=5,
                  logprobs=1)
    plain = client.completions.create(**kwargs)
    texts, _, _ = _streamed_texts(client.completions.create(stream=True, **kwargs), "completion")
    assert texts == {c.index: c.text for c in plain.choices}


def test_errors_through_the_official_client(client, served):
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=MODEL, prompt="x", n=7)
    assert err.value.param == "n" and "n is 7; the limit is 6" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], temperature=5)
    assert err.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=MODEL, prompt="x", extra_body={"max_token": 3})
    assert err.value.param == "max_token" and "unknown field" in err.value.message
    with pytest.raises(openai.BadRequestError, match="top_logprobs needs logprobs"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], top_logprobs=2)
    with pytest.raises(openai.BadRequestError) as err:  # refused before the stream starts: a real 400
        client.completions.create(model=MODEL, prompt=LONG_PROMPT * 20, max_tokens=200, stream=True)
    assert "exceeds the model's context" in err.value.message
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])
    wrong = openai.OpenAI(base_url=served.url + "/v1", api_key="not-the-key-0123456789", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.AuthenticationError):
        list(wrong.completions.create(model=MODEL, prompt="x", stream=True))


def _sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    events, name = [], "message"
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
            name = "message"
    return events


def test_solve_streams_candidates_verdicts_and_the_answer(served, demo):
    arith = demo.problems[0]
    body = {"problem": arith.prompt, "tests": [t.model_dump() for t in arith.public_tests], "n": 3,
            "temperature": 1.0, "seed": 2, "stream": True}
    with httpx.stream("POST", served.url + "/solve", json=body, headers=served.headers, timeout=120) as response:
        assert response.status_code == 200
        events = _sse_events(response)
    names = [name for name, _ in events]
    assert names.count("candidate") == 3 and names.count("test_result") == 3 and names[-1] == "result"
    assert names.index("test_result") > names.index("candidate")
    result = events[-1][1]
    plain = httpx.post(served.url + "/solve", json={**body, "stream": False}, headers=served.headers, timeout=120).json()
    untimed = ("code", "verified", "candidates", "routing")  # the same seeded candidates, the same verdicts
    assert {k: result[k] for k in untimed} == {k: plain[k] for k in untimed}
    assert result["test_results"]["passed"] == plain["test_results"]["passed"]
    assert {e["index"]: e["status"] for name, e in events if name == "test_result"} == {
        c["index"]: c["status"] for c in result["candidates"]}


def test_solve_takes_the_shapes_users_write(served, demo):
    stdio = next(p for p in demo.problems if p.public_tests[0].kind == "stdio")
    pairs = [{"input": t.input, "output": t.output} for t in stdio.public_tests]
    answer = httpx.post(served.url + "/solve", json={"problem": stdio.prompt, "tests": pairs}, headers=served.headers,
                        timeout=120).json()
    assert answer["verified"] is True and answer["test_results"]["total"] == len(pairs)
    call = demo.problems[0].public_tests[0]
    apps_style = {"fn_name": call.fn_name, "inputs": [call.args], "outputs": [call.expected]}
    answer = httpx.post(served.url + "/solve", json={"problem": demo.problems[0].prompt, "tests": [apps_style]},
                        headers=served.headers, timeout=120).json()
    assert answer["verified"] is True


async def _disconnect_mid_stream(served, demo, after_chunks: int):
    """Three requests in one batch: A streams a long answer and hangs up after a few chunks, B and C
    (one unstreamed, one streamed) run to their ends."""
    async_client = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key=served.key, max_retries=0, timeout=120)
    long_body = {"model": MODEL, "prompt": LONG_PROMPT, "max_tokens": LONG_TOKENS, "temperature": 0, "stream": True}
    b_prompt, c_prompt = format_prompt(demo.problems[0]), demo.problems[5].prompt

    async def hang_up():
        received, rid = 0, None
        async with httpx.AsyncClient(headers=served.headers, timeout=120) as http:
            async with http.stream("POST", served.url + "/v1/completions", json=long_body) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        chunk = json.loads(line[6:])
                        rid = chunk["id"]
                        received += bool(chunk["choices"][0]["text"])
                        if received == after_chunks:
                            break  # leaving the block closes the connection mid-stream
        return rid, received

    async def unstreamed():
        reply = await async_client.completions.create(model=MODEL, prompt=b_prompt, max_tokens=120, temperature=0)
        return reply.choices[0].text

    async def streamed():
        stream = await async_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": c_prompt}], max_tokens=120, temperature=0, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    return await asyncio.gather(hang_up(), unstreamed(), streamed())


def test_a_client_that_disconnects_stops_its_generation_and_the_batch_finishes(served, client, demo):
    full = client.completions.create(model=MODEL, prompt=LONG_PROMPT, max_tokens=LONG_TOKENS, temperature=0)
    assert full.choices[0].finish_reason == "length" and full.usage.completion_tokens == LONG_TOKENS  # a long answer
    b_alone = client.completions.create(model=MODEL, prompt=format_prompt(demo.problems[0]), max_tokens=120,
                                        temperature=0).choices[0].text
    c_alone = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": demo.problems[5].prompt}],
                                             max_tokens=120, temperature=0).choices[0].message.content

    before = httpx.get(served.url + "/healthz", timeout=30).json()["batches"]["cancelled_rows"]
    (rid, received), b_text, c_text = asyncio.run(_disconnect_mid_stream(served, demo, after_chunks=3))
    assert (b_text, c_text) == (b_alone, c_alone)  # the other rows of the batch ran to their ends

    deadline = time.monotonic() + 60  # the proxy tells the replica a moment after the connection closed
    while True:
        stats = httpx.get(served.url + "/healthz", timeout=30).json()["batches"]
        mine = [c for c in stats["recent_cancelled"] if c["request"] == rid]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(mine) == 1, f"no cancellation of {rid} (the client read {received} chunks); recorded: {stats['recent_cancelled']}"
    cancelled = mine[0]
    print(f"\ndisconnect: the client read {received} chunks and hung up; its row had produced {cancelled['tokens']} "
          f"of the {LONG_TOKENS} tokens of its answer, {cancelled['tokens_after_cancel']} of them after the cancel reached the "
          f"decode loop; it had arrived in a group of {cancelled['group_rows']} rows, and {cancelled['others_running']} "
          "other rows decoded on when it left")
    assert cancelled["group_rows"] == 3  # the three requests arrived together: one serve.batch batch
    assert stats["cancelled_rows"] == before + 1  # and only A's row left it early
    assert received <= cancelled["tokens"] < LONG_TOKENS
    assert cancelled["tokens_after_cancel"] <= 1  # at most the forward in flight when the cancel came
