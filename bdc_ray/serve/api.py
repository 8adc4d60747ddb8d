"""What clients send and receive: the HTTP API's pydantic models and the limits every request must fit.

Types and unknown fields are checked by the models (extra="forbid": a misspelt `max_token`
is an error, not a silently ignored field); sizes are checked against the configured
`ServeLimits` by `check_*`, with a message naming the field, the value and the limit. Both
happen before a request reaches the model or the sandbox.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bdc_ray.problems.types import Test
from bdc_ray.sandbox import RunResult
from bdc_ray.serve.config import ServeLimits


class APIError(Exception):
    """Answered as an OpenAI-style error object with this HTTP status."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.status}}


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


Stop = str | list[Annotated[str, Field(min_length=1)]] | None


class CompletionRequest(_Request):
    """OpenAI's /v1/completions body, the fields this server implements."""

    model: str = Field(description="The served model id (GET /v1/models).")
    prompt: str | list[str] = Field(description="One prompt or a list of prompts.")
    n: int = Field(1, ge=1, description="Samples per prompt.")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="0 is greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_tokens: int = Field(16, ge=1, description="New tokens per sample at most.")
    stop: Stop = Field(None, description="Up to `max_stop` strings; generation ends before the first one.")
    seed: int | None = Field(None, description="Reproducible sampling: a seeded request is never batched with others.")
    stream: bool = Field(False, description="Streaming is not offered: true is refused with a 400 saying so.")
    user: str | None = Field(None, max_length=256, description="An end-user id (accepted, not used).")
    problem: str | None = Field(
        None,
        description="bdc extension: the text the hypernetwork routes on; default: the task statement inside the "
        "prompt (between '### Task' and '### Solution'), else the whole prompt.",
    )

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class SolveRequest(_Request):
    """A problem statement, optionally tests; returns a program."""

    problem: str = Field(min_length=1, description="The problem statement (what follows '### Task').")
    tests: list[Test] = Field(
        default_factory=list,
        description="Tests in the project's forms ({'kind': 'stdio'|'call'|'assert', ...}); with n > 1 each "
        "candidate runs against them in the sandbox and the best verified one is returned.",
    )
    n: int = Field(1, ge=1, description="Candidates to generate.")
    temperature: float | None = Field(
        None, ge=0.0, le=2.0, description="Default: 0 (greedy) for n = 1, the configured sample temperature otherwise."
    )
    max_tokens: int | None = Field(None, ge=1, description="New tokens per candidate (default: the configured value).")
    seed: int | None = Field(None, description="Reproducible sampling of the candidates.")


class RoutingRequest(_Request):
    problem: str = Field(min_length=1, description="The problem statement to route.")


class Choice(BaseModel):
    index: int
    text: str
    logprobs: None = None
    finish_reason: Literal["stop", "length"] = Field(
        description="'length': the sample used all max_tokens without a stop token or stop string; else 'stop'."
    )


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class Candidate(BaseModel):
    index: int
    code: str
    status: str | None = Field(None, description="Sandbox verdict (None without tests).")
    passed: int | None = None
    total: int | None = None


class SolveResponse(BaseModel):
    code: str = Field(description="The chosen program: the best verified candidate, or the first one without tests.")
    verified: bool | None = Field(None, description="True iff the chosen program passed every test (None: no tests).")
    test_results: RunResult | None = Field(None, description="The chosen program's sandbox results.")
    candidates: list[Candidate]
    routing: RoutingResponse


class ExpertWeight(BaseModel):
    name: str
    weight: float = Field(description="The expert's share of the rank weights, averaged over modules; sums to 1.")


class RoutingResponse(BaseModel):
    problem_chars: int
    experts: list[ExpertWeight]
    per_module: dict[str, list[float]] = Field(
        description="Per adapted module, each expert's share of that module's rank weights."
    )


SolveResponse.model_rebuild()


def check_text(name: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise APIError(400, f"{name} has {len(text)} characters; the limit is {limit}", param=name)


def _check_stops(stops: list[str], limits: ServeLimits) -> None:
    if len(stops) > limits.max_stop:
        raise APIError(400, f"stop has {len(stops)} strings; the limit is {limits.max_stop}", param="stop")
    for s in stops:
        check_text("stop", s, limits.max_stop_chars)


def _check_sampling(n: int, max_tokens: int | None, limits: ServeLimits) -> None:
    if n > limits.max_n:
        raise APIError(400, f"n is {n}; the limit is {limits.max_n}", param="n")
    if max_tokens is not None and max_tokens > limits.max_tokens:
        raise APIError(400, f"max_tokens is {max_tokens}; the limit is {limits.max_tokens}", param="max_tokens")


def check_completion(body: CompletionRequest, limits: ServeLimits) -> None:
    if body.stream:
        raise APIError(400, "stream=true is not supported by this server; send stream=false", param="stream")
    prompts = body.prompts()
    if not prompts:
        raise APIError(400, "prompt is an empty list", param="prompt")
    if len(prompts) > limits.max_prompts:
        raise APIError(400, f"prompt has {len(prompts)} prompts; the limit is {limits.max_prompts}", param="prompt")
    for p in prompts:
        check_text("prompt", p, limits.max_prompt_chars)
    if body.problem is not None:
        check_text("problem", body.problem, limits.max_prompt_chars)
    _check_sampling(body.n, body.max_tokens, limits)
    _check_stops(body.stops(), limits)


def check_solve(body: SolveRequest, limits: ServeLimits) -> None:
    check_text("problem", body.problem, limits.max_prompt_chars)
    _check_sampling(body.n, body.max_tokens, limits)
    if len(body.tests) > limits.max_tests:
        raise APIError(400, f"tests has {len(body.tests)} tests; the limit is {limits.max_tests}", param="tests")
    for i, test in enumerate(body.tests):
        size = len(json.dumps(test.model_dump(mode="json"), separators=(",", ":"), default=str))
        if size > limits.max_test_chars:
            raise APIError(
                400, f"tests[{i}] is {size} characters as JSON; the limit is {limits.max_test_chars}", param="tests"
            )


def validation_message(err: ValidationError) -> str:
    """Every problem of a body in one line: `field.path: what is wrong`."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "request body"
        msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts) or "invalid request"


def parse_body(model: type[BaseModel], raw: bytes) -> Any:
    """Validate a JSON body against `model`; any failure is a 400 naming the fields."""
    if not raw.strip():
        raise APIError(400, "the request body is empty; send a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as err:
        raise APIError(400, validation_message(err)) from None
    except (ValueError, RecursionError) as err:  # nesting deeper than the JSON parser allows
        raise APIError(400, f"the request body is not valid JSON: {err}") from None

