"""A small OpenAI-compatible HTTP server over any backend of this package.

It lets a tiny CPU model (or a transformers model with LoRA experts) stand in for a hosted
endpoint: the OpenAI backend, `curl`, or the `openai` SDK can talk to it. Adapters are served
as extra model ids, as `vllm serve --lora-modules` does. Only what BDC needs is implemented:
text in, n texts out, no streaming, no logprobs.

    python -m bdc_ray.llm.openai_server --path ./tiny-model --adapter expert0=./experts/0 --port 8000
"""

from __future__ import annotations

import argparse
import hmac
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from bdc_ray.llm.base import LLM, GenerationStats, SamplingParams

MAX_PROMPT_CHARS = 200_000
MAX_PROMPTS = 256
MAX_N = 128
MAX_TOKENS = 32_768

Prompt = Annotated[str, Field(max_length=MAX_PROMPT_CHARS)]


class _Request(BaseModel):
    # Unknown OpenAI fields (user, logit_bias...) are accepted and ignored, as servers commonly do.
    model_config = ConfigDict(extra="ignore")

    model: str
    n: int = Field(1, ge=1, le=MAX_N)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(16, ge=1, le=MAX_TOKENS)
    stop: str | list[Annotated[str, Field(min_length=1)]] | None = None
    seed: int | None = None
    stream: bool = False

    def sampling(self) -> SamplingParams:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            n=self.n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_tokens,
            stop=[s for s in stop if s],
            seed=self.seed,
        )


class CompletionRequest(_Request):
    prompt: Prompt | Annotated[list[Prompt], Field(min_length=1, max_length=MAX_PROMPTS)]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Prompt


class ChatRequest(_Request):
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_PROMPTS)


class APIError(Exception):
    """Answered as an OpenAI error object with this status."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def join_contents(messages: list[ChatMessage]) -> str:
    """The default chat rendering: the messages' contents, one after another.

    A single user message becomes exactly its text, so chat and completions agree for the
    OpenAI backend's chat mode. Models with a chat template should pass `render_chat`.
    """
    return "\n".join(m.content for m in messages)


def create_app(
    llm: LLM,
    model_name: str,
    adapters: tuple[str, ...] | list[str] = (),
    *,
    render_chat: Callable[[list[ChatMessage]], str] = join_contents,
    api_key: str | None = None,
) -> FastAPI:
    """`model_name` is the id that selects the base model; each adapter name selects that adapter.

    With `api_key`, every /v1 route requires `Authorization: Bearer <api_key>`.
    """
    app = FastAPI(title="bdc-ray OpenAI-compatible server")
    served = (model_name, *adapters)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # OpenAI answers malformed requests with 400 and an error object, not FastAPI's 422.
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
        return _error(400, details or "invalid request")

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.kind)

    @app.middleware("http")
    async def _auth(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if api_key is not None and request.url.path.startswith("/v1/"):
            sent = request.headers.get("authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {api_key}".encode()):
                return _error(401, "missing or wrong API key", "authentication_error")
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": "bdc-ray"} for m in served],
        }

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest) -> dict[str, Any]:
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        texts, stats = await _generate(body, prompts)
        choices = [
            {"index": i, "text": text, "logprobs": None, "finish_reason": None}
            for i, text in enumerate(t for per_prompt in texts for t in per_prompt)
        ]
        return _reply("cmpl", "text_completion", body.model, choices, stats)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest) -> dict[str, Any]:
        texts, stats = await _generate(body, [render_chat(body.messages)])
        choices = [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": None}
            for i, text in enumerate(texts[0])
        ]
        return _reply("chatcmpl", "chat.completion", body.model, choices, stats)

    async def _generate(body: _Request, prompts: list[str]) -> tuple[list[list[str]], GenerationStats]:
        if body.stream:
            raise APIError(400, "stream=true is not supported by this server")
        if body.model not in served:
            raise APIError(404, f"model {body.model!r} not found; served: {list(served)}", "not_found_error")
        adapter = None if body.model == model_name else body.model
        return await llm.agenerate_with_stats(prompts, body.sampling(), adapter)

    return app


def _reply(prefix: str, kind: str, model: str, choices: list[dict[str, Any]], stats: GenerationStats) -> dict[str, Any]:
    # finish_reason is null: the LLM interface returns texts only, so "stop" and "length" are not known here.
    return {
        "id": f"{prefix}-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
            "total_tokens": stats.prompt_tokens + stats.completion_tokens,
        },
    }


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"message": message, "type": kind, "code": status}})


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from bdc_ray.llm.factory import make_llm
    from bdc_ray.llm.spec import BackendSpec

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", required=True, help="model folder or name")
    parser.add_argument("--backend", default="transformers", choices=["transformers", "vllm"])
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=FOLDER", help="a peft LoRA adapter")
    parser.add_argument("--served-model-name", default=None, help="model id of the base model (default: --path)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--api-key-env", default=None, help="environment variable with the key clients must send (default: no auth)"
    )
    args = parser.parse_args(argv)
    if any("=" not in a for a in args.adapter):
        parser.error("--adapter takes NAME=FOLDER")
    adapters = dict(a.split("=", 1) for a in args.adapter)
    spec = BackendSpec(
        backend=args.backend, path=args.path, adapters=adapters, device=args.device, threads=args.threads
    )
    api_key = os.environ[args.api_key_env] if args.api_key_env else None
    app = create_app(make_llm(spec), args.served_model_name or args.path, tuple(adapters), api_key=api_key)
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
