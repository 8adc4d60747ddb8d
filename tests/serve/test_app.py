"""The Serve application over real HTTP on a local Ray cluster: every endpoint, errors, auth, batching."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from bdc_ray.problems.synth import format_prompt, format_target
from bdc_ray.problems.types import AssertTest, CallTest

pytestmark = pytest.mark.ray

MODEL = "bdc-solver"


def _post(served, path: str, body, **kwargs) -> httpx.Response:
    return httpx.post(served.url + path, json=body, headers=served.headers, timeout=120, **kwargs)


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and error["message"]
    return error["message"]


def test_healthz_and_models(served):
    response = httpx.get(served.url + "/healthz", timeout=30)
    health = response.json()
    assert health["status"] == "ok" and health["experts"] == ["expert_0", "expert_1"] and health["batching"]
    assert response.headers["x-bdc-replica"] == health["replica"]
    models = httpx.get(served.url + "/v1/models", headers=served.headers, timeout=30).json()
    assert [m["id"] for m in models["data"]] == [MODEL]


def test_every_route_but_healthz_needs_the_key(served, demo):
    problem = demo.problems[0].prompt
    calls = [
        ("GET", "/v1/models", None), ("POST", "/v1/completions", {"model": MODEL, "prompt": "x"}),
        ("POST", "/solve", {"problem": problem}), ("GET", f"/v1/routing?problem={problem}", None),
        ("POST", "/v1/routing", {"problem": problem}),
    ]
    for method, path, body in calls:
        for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}, {"Authorization": served.key}):
            response = httpx.request(method, served.url + path, json=body, headers=headers, timeout=30)
            assert "API key" in _error(response, 401), (method, path, headers)


def test_completion_reproduces_a_learnt_program(served, demo):
    problem = demo.problems[0]
    reply = _post(served, "/v1/completions", {"model": MODEL, "prompt": format_prompt(problem), "max_tokens": 120,
                                              "temperature": 0, "n": 2})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "text_completion" and body["model"] == MODEL
    assert [c["text"] for c in body["choices"]] == [format_target(problem)] * 2
    assert [c["finish_reason"] for c in body["choices"]] == ["stop", "stop"]  # the model's end-of-text token
    usage = body["usage"]
    assert usage["prompt_tokens"] > 10 and usage["completion_tokens"] > 20
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    cut = _post(served, "/v1/completions", {"model": MODEL, "prompt": format_prompt(problem), "max_tokens": 4}).json()
    assert cut["choices"][0]["finish_reason"] == "length" and cut["usage"]["completion_tokens"] == 4


def test_completion_list_prompt_stop_and_sampling(served, demo):
    prompts = [format_prompt(p) for p in demo.problems[:3]]
    reply = _post(served, "/v1/completions", {"model": MODEL, "prompt": prompts, "max_tokens": 120, "temperature": 0,
                                              "stop": ["\ndef", "\nimport"]}).json()
    texts = [c["text"] for c in reply["choices"]]
    assert [c["index"] for c in reply["choices"]] == [0, 1, 2]
    assert all("\ndef" not in t and "\nimport" not in t for t in texts)
    assert texts[0] == format_target(demo.problems[0]).split("\ndef")[0]
    assert [c["finish_reason"] for c in reply["choices"]] == ["stop"] * 3
    sampled = _post(served, "/v1/completions", {"model": MODEL, "prompt": prompts[0], "max_tokens": 30, "n": 5,
                                                "temperature": 1.5, "seed": 3}).json()
    assert len(sampled["choices"]) == 5


def test_openai_backend_as_client(served, demo, monkeypatch):
    from bdc_ray.llm.base import SamplingParams
    from bdc_ray.llm.openai_backend import OpenAICompatibleLLM, OpenAIHTTPError

    monkeypatch.setenv("BDC_TEST_SERVE_KEY", served.key)
    llm = OpenAICompatibleLLM(served.url + "/v1", MODEL, api_key_env="BDC_TEST_SERVE_KEY", max_retries=0)
    prompts = [format_prompt(p) for p in demo.problems[:2]]
    texts, stats = llm.generate_with_stats(prompts, SamplingParams(n=2, max_new_tokens=120))
    assert texts == [[format_target(p)] * 2 for p in demo.problems[:2]]
    assert stats.completion_tokens > 0 and stats.prompt_tokens > 0
    with pytest.raises(OpenAIHTTPError) as err:
        llm.generate(prompts[:1], SamplingParams(max_new_tokens=8), adapter="other-model")
    assert err.value.status_code == 404 and "not found" in err.value.message
    monkeypatch.setenv("BDC_TEST_SERVE_KEY", "not-the-key-0123456789")
    with pytest.raises(OpenAIHTTPError) as err:
        llm.generate(prompts[:1], SamplingParams(max_new_tokens=8))
    assert err.value.status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"model": MODEL, "prompt": "x", "max_token": 3}, 400, "max_token: unknown field"),
        ({"model": MODEL, "prompt": 7}, 400, "prompt"),
        ({"model": MODEL}, 400, "prompt: Field required"),
        ({"model": MODEL, "prompt": "x", "n": "many"}, 400, "n:"),
        ({"model": MODEL, "prompt": "x", "n": 7}, 400, "n is 7; the limit is 6"),
        ({"model": MODEL, "prompt": "x", "n": 0}, 400, "n:"),
        ({"model": MODEL, "prompt": "x", "max_tokens": 201}, 400, "max_tokens is 201; the limit is 200"),
        ({"model": MODEL, "prompt": "x" * 2001}, 400, "prompt has 2001 characters"),
        ({"model": MODEL, "prompt": ["x"] * 17}, 400, "17 prompts"),
        ({"model": MODEL, "prompt": []}, 400, "empty list"),
        ({"model": MODEL, "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop has 5 strings"),
        ({"model": MODEL, "prompt": "x", "stop": [""]}, 400, "stop"),
        ({"model": MODEL, "prompt": "x", "temperature": 3}, 400, "temperature"),
        ({"model": MODEL, "prompt": "x", "stream_options": {"include_usage": True}}, 400, "only allowed with stream"),
        ({"model": MODEL, "prompt": "x", "logprobs": 21}, 400, "logprobs is 21; the limit is 20"),
        ({"model": MODEL, "prompt": "word " * 300, "max_tokens": 200}, 400, "exceeds the model's context of 256"),
        ({"model": "gpt-4", "prompt": "x"}, 404, "model 'gpt-4' not found"),
        ([1, 2], 400, "request body: Input should be an object"),
    ],
)
def test_bad_completion_requests(served, body, status, says):
    assert says in _error(_post(served, "/v1/completions", body), status)


def test_malformed_bodies_and_unknown_routes(served):
    replica = httpx.get(served.url + "/healthz", timeout=30).json()["replica"]
    headers = {**served.headers, "Content-Type": "application/json"}
    post = lambda content: httpx.post(served.url + "/v1/completions", content=content, headers=headers, timeout=30)  # noqa: E731
    assert "Invalid JSON" in _error(post(b'{"model": "bdc-solver", "prompt": '), 400)
    assert "empty" in _error(post(b""), 400)
    assert "recursion" in _error(post(b'{"model": "m", "prompt": ' + b"[" * 3000 + b"]" * 3000 + b"}"), 400)
    big = json.dumps({"model": MODEL, "prompt": "y" * 30_000}).encode()
    assert f"{len(big)} bytes; the limit is 20000" in _error(post(big), 413)
    chunked = (big[i : i + 1000] for i in range(0, len(big), 1000))  # no Content-Length: counted while read
    assert "exceeds the limit of 20000 bytes" in _error(post(chunked), 413)
    assert _error(httpx.get(served.url + "/v2/nothing", timeout=30), 404)
    assert _error(httpx.get(served.url + "/solve", timeout=30), 405)
    assert httpx.get(served.url + "/healthz", timeout=30).json()["replica"] == replica  # alive, not restarted


def test_solve_returns_the_best_verified_program_with_its_results(served, demo):
    arith = demo.problems[0]
    entry = arith.public_tests[0].fn_name
    arg = arith.public_tests[0].args[0]
    tests = [t.model_dump() for t in arith.public_tests[:2]]
    tests.append(AssertTest(code=f"assert {entry}({arg}) == {arith.public_tests[0].expected!r}").model_dump())
    # Seeded: unseeded, all three samples fail now and then (each passes about half the time).
    reply = _post(served, "/solve", {"problem": arith.prompt, "tests": tests, "n": 3, "temperature": 1.0, "seed": 1})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["verified"] is True and answer["test_results"]["status"] == "passed"
    assert answer["test_results"]["passed"] == answer["test_results"]["total"] == 3
    assert len(answer["candidates"]) == 3
    best = [c for c in answer["candidates"] if c["code"] == answer["code"]]
    assert best and best[0]["status"] == "passed"
    assert {e["name"] for e in answer["routing"]["experts"]} == {"expert_0", "expert_1"}

    stdio = next(p for p in demo.problems if p.public_tests[0].kind == "stdio")
    stdio_tests = [t.model_dump() for t in stdio.public_tests]
    stdio_answer = _post(served, "/solve", {"problem": stdio.prompt, "tests": stdio_tests}).json()
    # Its verdicts in the message: it failed once in ten loaded suite runs, cause not yet shown.
    assert stdio_answer["verified"] is True, (stdio_answer.get("test_results"), stdio_answer.get("candidates"))


def test_solve_reports_failures_and_plain_generation(served, demo):
    arith = demo.problems[0]
    wrong = CallTest(fn_name=arith.public_tests[0].fn_name, args=arith.public_tests[0].args, expected="nope")
    failed = _post(served, "/solve", {"problem": arith.prompt, "tests": [wrong.model_dump()], "n": 2}).json()
    assert failed["verified"] is False and failed["test_results"]["status"] == "failed"
    assert failed["test_results"]["first_failure"]["expected"] is not None
    plain = _post(served, "/solve", {"problem": arith.prompt}).json()
    assert plain["code"] == format_target(arith) and plain["verified"] is None and plain["test_results"] is None


def test_client_test_code_runs_under_the_configured_limits(served, demo):
    """An assertion test is code from the client: it runs in the sandbox, bounded by time_s (2 s here)."""
    forever = AssertTest(code="while True:\n    pass").model_dump()
    escape = AssertTest(code="import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)").model_dump()
    answer = _post(served, "/solve", {"problem": demo.problems[0].prompt, "tests": [forever, escape]}).json()
    statuses = [t["status"] for t in answer["test_results"]["tests"]]
    assert answer["verified"] is False and statuses == ["timeout", "error"], answer["test_results"]
    assert answer["test_results"]["tests"][0]["time_s"] < 5


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"problem": "p", "tests": [{"kind": "stdio", "input": "", "output": ""}] * 6}, "tests has 6 tests"),
        ({"problem": "p", "tests": [{"kind": "stdio", "input": "1" * 600, "output": ""}]}, "tests[0] is"),
        ({"problem": "p", "tests": [{"kind": "shell", "cmd": "rm -rf /"}]}, "tests[0]"),
        ({"problem": "p", "tests": [{"stdin": "1", "stdout": "2"}]}, "expected one of: {input, output}"),
        ({"tests": ["assert True"]}, "give `problem`"),
        ({"problem": "p", "tests": [{"kind": "call", "fn_name": "f", "args": [], "expected": 1, "timeout": 99}]},
         "unknown field"),
        ({"problem": "p", "limits": {"time_s": 1000}}, "limits: unknown field"),
        ({"problem": ""}, "problem"),
        ({"problem": "p", "n": 9}, "n is 9"),
    ],
)
def test_bad_solve_requests_never_reach_the_sandbox(served, body, says):
    assert says in _error(_post(served, "/solve", body), 400)


def test_routing_get_and_post(served, demo):
    first, other = demo.problems[0].prompt, demo.problems[-1].prompt
    got = httpx.get(served.url + "/v1/routing", params={"problem": first}, headers=served.headers, timeout=30).json()
    posted = _post(served, "/v1/routing", {"problem": first}).json()
    assert got == posted
    assert abs(sum(e["weight"] for e in got["experts"]) - 1.0) < 1e-5
    assert len(got["per_module"]) == 4 and all(abs(sum(w) - 1.0) < 1e-5 for w in got["per_module"].values())
    elsewhere = _post(served, "/v1/routing", {"problem": other}).json()
    assert elsewhere["experts"] != got["experts"]
    assert "exactly one" in _error(httpx.get(served.url + "/v1/routing", headers=served.headers, timeout=30), 400)
    assert "characters" in _error(_post(served, "/v1/routing", {"problem": "q" * 2001}), 400)


async def _send_all(served, calls):
    async with httpx.AsyncClient(headers=served.headers, timeout=120) as client:
        return await asyncio.gather(*(client.post(served.url + path, json=body) for path, body in calls))


def _outputs(responses) -> list:
    out = []
    for r in responses:
        assert r.status_code == 200, r.text
        body = r.json()
        out.append([c["text"] for c in body["choices"]] if "choices" in body else body["code"])
    return out


def test_concurrent_heterogeneous_requests_equal_one_by_one(served, demo):
    """Different problems, n, prompt lists, stop strings and routing texts, greedy: batched == alone."""
    p = demo.problems
    fmt = [format_prompt(q) for q in p]
    calls = [
        ("/v1/completions", {"model": MODEL, "prompt": fmt[0], "max_tokens": 60, "temperature": 0}),
        ("/v1/completions", {"model": MODEL, "prompt": fmt[1], "max_tokens": 60, "temperature": 0, "n": 2}),
        ("/v1/completions", {"model": MODEL, "prompt": [fmt[3], fmt[4]], "max_tokens": 60, "temperature": 0}),
        ("/v1/completions", {"model": MODEL, "prompt": fmt[5], "max_tokens": 60, "temperature": 0,
                             "problem": p[2].prompt}),
        ("/v1/completions", {"model": MODEL, "prompt": fmt[2], "max_tokens": 60, "temperature": 0, "stop": ["\n#"]}),
        ("/v1/completions", {"model": MODEL, "prompt": "def f(x):", "max_tokens": 20, "temperature": 0}),
        ("/solve", {"problem": p[4].prompt, "max_tokens": 90}),
    ]
    before = httpx.get(served.url + "/healthz", timeout=30).json()["batches"]
    together = _outputs(asyncio.run(_send_all(served, calls)))
    after = httpx.get(served.url + "/healthz", timeout=30).json()["batches"]
    alone = [_outputs(asyncio.run(_send_all(served, [call])))[0] for call in calls]
    assert together == alone
    # The four same-setting completion requests (5 rows, 4 different problems) shared one forward pass.
    grown = {int(rows): n - before["rows_histogram"].get(rows, 0) for rows, n in after["rows_histogram"].items()}
    assert any(rows >= 5 and n > 0 for rows, n in grown.items()), (before, after)
    assert after["calls"] - before["calls"] < len(calls)


def test_run_report_files_behind_the_key(served):
    """The tree explorer and report of a run folder on storage the replica reads, under /runs/, with the API key."""
    from pathlib import Path

    page_url = f"{served.url}/runs/explored/explorer.html"
    for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}):
        assert "API key" in _error(httpx.get(page_url, headers=headers, timeout=30), 401)
    page = httpx.get(page_url, headers=served.headers, timeout=30)
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.text == (Path(served.runs) / "explored" / "report" / "explorer.html").read_text()
    assert "p/tree" in page.text and "Content-Security-Policy" in page.text
    report = httpx.get(f"{served.url}/runs/explored/report.md", headers=served.headers, timeout=30)
    assert report.headers["content-type"].startswith("text/markdown") and "(explorer.html)" in report.text
    plot = httpx.get(f"{served.url}/runs/explored/boost_tree.png", headers=served.headers, timeout=30)
    assert plot.headers["content-type"] == "image/png" and plot.content.startswith(b"\x89PNG")
    get = lambda path: httpx.get(served.url + path, headers=served.headers, timeout=30)  # noqa: E731
    assert "is not readable from this replica" in _error(get("/runs/elsewhere/explorer.html"), 404)
    assert "bdc report" in _error(get("/runs/unreported/explorer.html"), 404)
    for path in ("/runs/%2e%2e/explorer.html", "/runs/explored/.explorer.html", "/runs/explored/summary.json"):
        assert "no such run file" in _error(get(path), 404), path
    assert _error(get("/runs/explored/..%2Fconfig.yaml"), 404)  # a decoded slash matches no route at all
