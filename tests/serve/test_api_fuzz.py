"""A property-based fuzz run of the whole HTTP API: schemathesis generates requests from the app's own
OpenAPI schema (valid ones and ones that break it) for every operation and sends them to the running
Serve app on loopback. Nothing may be answered 5xx, every error must be OpenAI's error object, the
replica must not restart, and the app must still answer properly afterwards.

Bounded twice: `EXAMPLES` examples per operation and generation mode, and `BUDGET_S` of wall time in
all (what is left when the budget runs out is skipped, and the count says so). The app's limits are
small (8 new tokens, 2 samples, 2 prompts, 2 tests), so a valid request costs little; valid requests
name the served model (a random one would only ever meet the 404)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.serve.conftest import serving

pytestmark = pytest.mark.ray

EXAMPLES = 60
MODEL = "bdc-solver"
BUDGET_S = 75.0
FUZZ_SETTINGS = {
    "autoscaling": {"min_replicas": 1, "max_replicas": 1},
    "resources": {"num_cpus": 0.5},
    "batching": {"max_batch_size": 4, "batch_wait_timeout_s": 0.01},
    "limits": {"max_body_bytes": 20_000, "max_prompt_chars": 1_000, "max_prompts": 2, "max_tokens": 8, "max_n": 2,
               "max_stop": 2, "max_messages": 8, "max_logprobs": 3, "max_tests": 2, "max_test_chars": 400},
    "solve": {"max_tokens": 8, "sample_temperature": 0.8, "sandbox_workers": 1,
              "sandbox_limits": {"time_s": 1.0, "program_time_s": 3.0}},
}


@pytest.fixture(scope="module")
def fuzzed(ray_local, demo, tmp_path_factory):
    with serving(demo, tmp_path_factory, FUZZ_SETTINGS) as app:
        yield app


def _error_shaped(response) -> bool:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(error.get("message"), str) and error.get("code") == response.status_code


def test_generated_requests_to_every_endpoint_get_no_5xx_and_leave_the_replica_alive(fuzzed, demo):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_url(fuzzed.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = sorted(op.label for op in operations)
    assert labels == sorted([
        "GET /healthz", "GET /v1/models", "POST /v1/completions", "POST /v1/chat/completions", "POST /solve",
        "GET /v1/routing", "POST /v1/routing", "GET /runs/{run}/{name}",
    ]), labels
    before = httpx.get(fuzzed.url + "/healthz", timeout=30).json()
    started = time.monotonic()
    sent: dict[str, int] = {}
    statuses: dict[int, int] = {}
    problems: list[str] = []
    unbreakable: list[str] = []

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def send(case):
                if time.monotonic() - started > BUDGET_S:
                    return
                if mode == GenerationMode.POSITIVE and isinstance(case.body, dict) and "model" in case.body:
                    case.body["model"] = MODEL  # so that valid requests reach the model, not only the 404
                response = case.call(base_url=fuzzed.url, headers=fuzzed.headers, timeout=60)
                sent[operation.label] = sent.get(operation.label, 0) + 1
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                case.validate_response(response, checks=[not_a_server_error])
                if response.status_code >= 400 and not _error_shaped(response):
                    problems.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

            try:
                send()
            except Unsatisfiable:  # nothing to break: no body, and parameters that accept any string
                assert mode == GenerationMode.NEGATIVE, operation.label
                unbreakable.append(operation.label)

    total = sum(sent.values())
    print(f"\nfuzz: {total} generated requests in {time.monotonic() - started:.0f} s over {len(operations)} "
          f"operations: {dict(sorted(sent.items()))}; statuses {dict(sorted(statuses.items()))}; no negative case "
          f"exists for {unbreakable}")
    assert not problems, problems[:5]
    assert all(status < 500 for status in statuses)
    assert all(sent.get(label, 0) > 0 for label in labels), sent  # every endpoint was exercised
    after = httpx.get(fuzzed.url + "/healthz", timeout=30).json()
    assert after["replica"] == before["replica"] and after["batches"]["calls"] >= before["batches"]["calls"]
    reply = httpx.post(fuzzed.url + "/v1/completions", headers=fuzzed.headers, timeout=60, json={
        "model": MODEL, "prompt": "### Task\n" + demo.problems[0].prompt + "\n### Solution\n", "max_tokens": 8,
        "temperature": 0})
    assert reply.status_code == 200 and reply.headers["x-bdc-replica"] == before["replica"]
    assert reply.json()["choices"][0]["text"]
