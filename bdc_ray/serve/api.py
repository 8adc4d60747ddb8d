"""What clients send and receive: the HTTP API's pydantic models and the limits every request must fit.

Types and unknown fields are checked by the models (extra="forbid": a misspelt `max_token`
is an error, not a silently ignored field); sizes are checked against the configured
`ServeLimits` by `check_*`, with a message naming the field, the value and the limit. Both
happen before a request reaches the model or the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bdc_ray.customize import TokenLogprob
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


StopString = Annotated[str, Field(min_length=1)]
Stop = StopString | list[StopString] | None


class StreamOptions(_Request):
    include_usage: bool = Field(False, description="Send a last chunk with the usage of the whole request.")


class _Sampling(_Request):
    """What both OpenAI endpoints share."""

    model: str = Field(description="The served model id (GET /v1/models).")
    n: int = Field(1, ge=1, description="Samples per prompt.")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="0 is greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    stop: Stop = Field(None, description="Up to `max_stop` strings; generation ends before the first one.")
    seed: int | None = Field(
        None, description="Reproducible sampling: each sample draws from its own generator seeded by (seed, index)."
    )
    stream: bool = Field(False, description="Server-sent events in OpenAI's chunk format, ending with `data: [DONE]`.")
    stream_options: StreamOptions | None = Field(None, description="Only with stream=true.")
    user: str | None = Field(None, max_length=256, description="An end-user id (accepted, not used).")
    problem: str | None = Field(
        None, description="bdc extension: the text the hypernetwork routes on (default: see each endpoint)."
    )

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


class CompletionRequest(_Sampling):
    """OpenAI's /v1/completions body, the fields this server implements."""

    prompt: str | list[str] = Field(description="One prompt or a list of prompts.")
    max_tokens: int = Field(16, ge=1, description="New tokens per sample at most.")
    logprobs: int | None = Field(
        None, ge=0, description="The log-probability of each generated token and of the `logprobs` likeliest ones."
    )
    problem: str | None = Field(
        None,
        description="bdc extension: the text the hypernetwork routes on; default: the task statement inside the "
        "prompt (between '### Task' and '### Solution'), else the whole prompt.",
    )

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class TextPart(_Request):
    type: Literal["text"]
    text: str


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = Field(description="Text, or a list of text parts; null only for assistant.")
    name: str | None = Field(None, max_length=256, description="Accepted, not used.")

    @property
    def text(self) -> str:
        if self.content is None:
            return ""
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class ChatCompletionRequest(_Sampling):
    """OpenAI's /v1/chat/completions body, the fields this server implements."""

    messages: list[ChatMessage] = Field(min_length=1, description="The conversation; at least one user message.")
    max_tokens: int | None = Field(None, ge=1, description="New tokens per sample (default: what fits, up to the limit).")
    max_completion_tokens: int | None = Field(None, ge=1, description="OpenAI's newer name of max_tokens.")
    logprobs: bool = Field(False, description="Return each generated token's log-probability.")
    top_logprobs: int | None = Field(None, ge=0, description="With logprobs: the likeliest tokens at each position.")
    problem: str | None = Field(
        None, description="bdc extension: the text the hypernetwork routes on; default: the last user message."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ChatCompletionRequest:
        if self.max_tokens is not None and self.max_completion_tokens is not None:
            raise ValueError("give max_tokens or max_completion_tokens, not both")
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs=true")
        if not any(m.role == "user" for m in self.messages):
            raise ValueError("messages has no user message: the last one is the problem the solver routes on")
        return self

    @property
    def new_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def top(self) -> int | None:
        """Top alternatives per token (None: no logprobs)."""
        return (self.top_logprobs or 0) if self.logprobs else None


class SolveRequest(_Request):
    """A problem statement (or a dataset record), optionally tests; returns a program."""

    problem: str | None = Field(
        None, min_length=1, description="The problem statement (what follows '### Task'); default: the record's."
    )
    tests: list[str | dict[str, Any]] = Field(
        default_factory=list,
        description="Tests in the shapes users write (serve/test_shapes.py: stdin/stdout pairs, call-based fn_name + "
        "args/inputs, assert strings, the test fields of HumanEval/MBPP/APPS/CodeContests records, or the project's "
        "{'kind': ...} forms); with them each candidate runs in the sandbox and the best verified one is returned.",
    )
    record: dict[str, Any] | None = Field(
        None, description="A whole HumanEval, MBPP, APPS or CodeContests record: its statement and all its tests."
    )
    n: int = Field(1, ge=1, description="Candidates to generate.")
    temperature: float | None = Field(
        None, ge=0.0, le=2.0, description="Default: 0 (greedy) for n = 1, the configured sample temperature otherwise."
    )
    max_tokens: int | None = Field(None, ge=1, description="New tokens per candidate (default: the configured value).")
    seed: int | None = Field(None, description="Reproducible sampling of the candidates.")
    stream: bool = Field(
        False, description="Server-sent events: `candidate` (each generated program), `test_result` (each verdict), "
        "then `result` (this endpoint's whole answer)."
    )


class RoutingRequest(_Request):
    problem: str = Field(min_length=1, description="The problem statement to route.")


FinishReason = Literal["stop", "length"]
FINISH_DESCRIPTION = "'length': the sample used all max_tokens without a stop token or stop string; else 'stop'."


class CompletionLogprobs(BaseModel):
    """OpenAI's completions logprobs: parallel lists over the generated tokens."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]

    @classmethod
    def of(cls, entries: Sequence[TokenLogprob], offset: int = 0) -> CompletionLogprobs:
        """`offset`: where the first token's text starts in the choice's text."""
        starts = []
        for e in entries:
            starts.append(offset)
            offset += len(e.token)
        return cls(tokens=[e.token for e in entries], token_logprobs=[e.logprob for e in entries],
                   top_logprobs=[dict(e.top) for e in entries], text_offset=starts)


class Choice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: FinishReason = Field(description=FINISH_DESCRIPTION)


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                   total_tokens=prompt_tokens + completion_tokens)


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class ChatTokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChatLogprobs(BaseModel):
    content: list[ChatTokenLogprob]
    refusal: None = None

    @classmethod
    def of(cls, entries: Sequence[TokenLogprob]) -> ChatLogprobs:
        def top(token: str, logprob: float) -> TopLogprob:
            return TopLogprob(token=token, logprob=logprob, bytes=list(token.encode("utf-8")))

        return cls(content=[ChatTokenLogprob(**top(e.token, e.logprob).model_dump(),
                                             top_logprobs=[top(t, lp) for t, lp in e.top]) for e in entries])


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: ChatLogprobs | None = None
    finish_reason: FinishReason = Field(description=FINISH_DESCRIPTION)


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: int


class ErrorResponse(BaseModel):
    """Every error, in OpenAI's shape (its client reads `param` and `message` from here)."""

    error: ErrorDetail


class GeneratedCandidate(BaseModel):
    """A /solve stream's `candidate` event: one program, as soon as it is generated."""

    index: int
    code: str
    finish_reason: str


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


def _check_sampling(n: int, max_tokens: int | None, limits: ServeLimits, name: str = "max_tokens") -> None:
    if n > limits.max_n:
        raise APIError(400, f"n is {n}; the limit is {limits.max_n}", param="n")
    if max_tokens is not None and max_tokens > limits.max_tokens:
        raise APIError(400, f"{name} is {max_tokens}; the limit is {limits.max_tokens}", param=name)


def _check_common(body: _Sampling, limits: ServeLimits) -> None:
    if body.stream_options is not None and not body.stream:
        raise APIError(400, "stream_options is only allowed with stream=true", param="stream_options")
    if body.problem is not None:
        check_text("problem", body.problem, limits.max_prompt_chars)
    _check_stops(body.stops(), limits)


def _check_logprobs(name: str, top: int | None, limits: ServeLimits) -> None:
    if top is not None and top > limits.max_logprobs:
        raise APIError(400, f"{name} is {top}; the limit is {limits.max_logprobs}", param=name)


def check_completion(body: CompletionRequest, limits: ServeLimits) -> None:
    prompts = body.prompts()
    if not prompts:
        raise APIError(400, "prompt is an empty list", param="prompt")
    if len(prompts) > limits.max_prompts:
        raise APIError(400, f"prompt has {len(prompts)} prompts; the limit is {limits.max_prompts}", param="prompt")
    for p in prompts:
        check_text("prompt", p, limits.max_prompt_chars)
    _check_sampling(body.n, body.max_tokens, limits)
    _check_logprobs("logprobs", body.logprobs, limits)
    _check_common(body, limits)


def check_chat(body: ChatCompletionRequest, limits: ServeLimits) -> None:
    if len(body.messages) > limits.max_messages:
        raise APIError(400, f"messages has {len(body.messages)} messages; the limit is {limits.max_messages}",
                       param="messages")
    total = sum(len(m.text) for m in body.messages)
    if total > limits.max_prompt_chars:
        raise APIError(400, f"messages have {total} characters in all; the limit is {limits.max_prompt_chars}",
                       param="messages")
    name = "max_completion_tokens" if body.max_completion_tokens is not None else "max_tokens"
    _check_sampling(body.n, body.new_tokens, limits, name)
    _check_logprobs("top_logprobs", body.top_logprobs, limits)
    _check_common(body, limits)


def check_solve(body: SolveRequest, limits: ServeLimits) -> None:
    if body.problem is not None:
        check_text("problem", body.problem, limits.max_prompt_chars)
    _check_sampling(body.n, body.max_tokens, limits)


def check_tests(tests: Sequence[Any], limits: ServeLimits) -> None:
    """The tests a /solve request expands to (after test_shapes): how many, and how big each."""
    if len(tests) > limits.max_tests:
        raise APIError(400, f"tests has {len(tests)} tests; the limit is {limits.max_tests}", param="tests")
    for i, test in enumerate(tests):
        size = len(json.dumps(test.model_dump(mode="json"), separators=(",", ":"), default=str))
        if size > limits.max_test_chars:
            raise APIError(
                400, f"tests[{i}] is {size} characters as JSON; the limit is {limits.max_test_chars}", param="tests"
            )


def _loc(e: dict) -> str:
    return ".".join(str(p) for p in e["loc"]) or "request body"


def validation_message(err: ValidationError) -> str:
    """Every problem of a body in one line: `field.path: what is wrong`."""
    parts = []
    for e in err.errors():
        msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
        parts.append(f"{_loc(e)}: {msg}")
    return "; ".join(parts) or "invalid request"


def parse_body(model: type[BaseModel], raw: bytes) -> Any:
    """Validate a JSON body against `model`; any failure is a 400 naming the fields (the first in
    `param`, where OpenAI's client looks for it)."""
    if not raw.strip():
        raise APIError(400, "the request body is empty; send a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as err:
        errors = err.errors()
        param = _loc(errors[0]).split(".")[0] if errors and errors[0]["loc"] else None
        raise APIError(400, validation_message(err), param=param) from None
    except (ValueError, RecursionError) as err:  # nesting deeper than the JSON parser allows
        raise APIError(400, f"the request body is not valid JSON: {err}") from None
