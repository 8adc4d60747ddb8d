"""The Ray Serve application: a FastAPI ingress over replicas that each hold base + experts + hypernetwork.

    serve run serve_config.yaml                       # the file `bdc serve config` writes
    serve.run(build_app({"hypernet": ..., "experts": ..., "settings": {...}}))

Routes (relative to the route prefix):
- GET  /healthz          liveness and batching figures of the answering replica (no auth)
- GET  /v1/models        the served model id (OpenAI-compatible)
- POST /v1/completions   OpenAI-compatible completions; each prompt routed by its own problem statement
- POST /v1/chat/completions  OpenAI-compatible chat; routed by the last user message
- POST /solve            problem or record (+ tests) -> program; candidates verified in the replica's sandbox
- GET|POST /v1/routing   the expert weights the hypernetwork gives a problem
- GET  /runs/<run>/<file> a run's report files: explorer.html (Boost's trees), report.md, plots

Every request is authenticated (when a key is configured), size-capped while its body is
read, validated, and checked against the limits before it can reach the model or the sandbox;
every error is a JSON object with a message. Generation goes through serve.batch: concurrent
requests become one batch, decoded step by step in shared forward passes in which every row
carries its own routing weights and settings (engine.py, decode.py). The batched handler is an
async generator: each step's new text reaches its request as it is decoded, so `stream: true`
sends it on at once (streaming.py) and an unstreamed request collects it; a request whose client
goes away cancels its rows, which leave the batch while the others finish.
"""

# No `from __future__ import annotations` here: Serve's class-based views hand FastAPI the route
# signatures as they are, and a string annotation `Request` would be read as a query parameter.
import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from ray import serve
from ray.serve import Application
from starlette.exceptions import HTTPException as StarletteHTTPException

from bdc_ray.customize import Completion
from bdc_ray.llm.base import SamplingParams
from bdc_ray.metrics import add, sandbox_metrics
from bdc_ray.problems.prompt_format import prompt_text
from bdc_ray.serve.api import (
    APIError,
    AssistantMessage,
    ChatChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatLogprobs,
    Choice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
    ErrorResponse,
    RoutingRequest,
    RoutingResponse,
    SolveRequest,
    SolveResponse,
    Usage,
    check_chat,
    check_completion,
    check_solve,
    check_tests,
    check_text,
    parse_body,
    validation_message,
)
from bdc_ray.serve.auth import make_auth
from bdc_ray.serve.chat import routing_text
from bdc_ray.serve.deploy_config import AppArgs, deployment_options
from bdc_ray.serve.engine import EngineBase, GenJob, GenOutput, JobEvent, job_rows, routing_text_of
from bdc_ray.serve.metrics import serve_metrics
from bdc_ray.serve.run_files import run_file
from bdc_ray.serve.solve import SolveEvent, solve_events
from bdc_ray.serve.streaming import HEADERS, MEDIA_TYPE, ChunkWriter, completion_stream, error_event, merged, sse
from bdc_ray.serve.test_shapes import solve_inputs

log = logging.getLogger(__name__)

fastapi_app = FastAPI(title="bdc-ray customized solver", version="1")
REPLICA_HEADER = "x-bdc-replica"
BODIES = (CompletionRequest, ChatCompletionRequest, SolveRequest, RoutingRequest)
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": what}
    for status, what in ((400, "Invalid request (the field is named)"), (401, "Missing or wrong API key"),
                         (404, "Unknown model or route"), (413, "Body too large"))
}
STREAMS: dict[int | str, dict[str, Any]] = {200: {"content": {MEDIA_TYPE: {}}, "description": "JSON, or SSE with stream"}}


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """The route's request body in the OpenAPI schema: routes read and validate the body themselves
    (size cap first, errors in OpenAI's shape), so FastAPI does not know it unless told."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def _openapi() -> dict[str, Any]:
    """FastAPI's schema plus the request bodies' models (what schemathesis and client generators read)."""
    if fastapi_app.openapi_schema is None:
        schema = get_openapi(title=fastapi_app.title, version=fastapi_app.version, routes=fastapi_app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in BODIES:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        fastapi_app.openapi_schema = schema
    return fastapi_app.openapi_schema


fastapi_app.openapi = _openapi  # type: ignore[method-assign]


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse(status_code=status, content=APIError(status, message, kind).body())


@fastapi_app.exception_handler(APIError)
async def _api_error(_: Request, exc: APIError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content=exc.body())


@fastapi_app.exception_handler(StarletteHTTPException)
async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return _error(exc.status_code, str(exc.detail), kind)


@fastapi_app.exception_handler(Exception)
async def _internal(request: Request, exc: Exception) -> JSONResponse:
    # The request fails, the replica does not; the client learns that it was not its fault.
    log.exception("unhandled error on %s", request.url.path)
    return _error(500, f"internal error ({type(exc).__name__}); the request was not completed", "server_error")


@fastapi_app.middleware("http")
async def _observe(request: Request, call_next):
    started = time.perf_counter()
    status = 500  # unless a response comes back: an unhandled error is answered 500 further out
    try:
        response = await call_next(request)
        status = response.status_code
        # Which replica answered: load spread and failover are visible to any client.
        response.headers[REPLICA_HEADER] = serve.get_replica_context().replica_tag
        return response
    finally:
        label = getattr(request.scope.get("route"), "path", "unmatched")  # route templates: bounded tags
        metrics = serve_metrics()
        metrics["requests"].inc(1, {"route": label, "status": str(status)})
        metrics["latency"].observe((time.perf_counter() - started) * 1000, {"route": label})


def deployed_artifacts(args: AppArgs) -> tuple[str | None, list[str] | None]:
    """(base model, expert folders) of what a user deploys: the experts manifest's entries for the
    experts the hypernetwork mixes, in its order (None: the paths the checkpoint recorded)."""
    from bdc_ray.artifacts.experts import load_manifest
    from bdc_ray.customize import load_meta

    if args.experts is None:
        return args.base_model, None
    manifest = load_manifest(args.experts)
    by_name = {e.name: e.path for e in manifest.experts}
    wanted = [e.name for e in load_meta(args.hypernet).experts]
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise ValueError(
            f"the hypernetwork at {args.hypernet} mixes experts {wanted}, but {args.experts}/manifest.json has no "
            f"entry for {missing} (it lists {sorted(by_name)})"
        )
    return args.base_model or manifest.base_model, [by_name[n] for n in wanted]


def load_engine(args: AppArgs) -> EngineBase:
    """The engine `serve.engine` names, over the hypernetwork folder + experts manifest (+ base override)."""
    from bdc_ray.customize import load_customized
    from bdc_ray.training import worker_device

    settings = args.settings
    base, expert_paths = deployed_artifacts(args)
    on_group = lambda rows: serve_metrics()["batch_rows"].observe(rows)  # noqa: E731
    if settings.engine == "vllm":
        from bdc_ray.serve.vllm_engine import load_vllm_engine

        return load_vllm_engine(args.hypernet, base, expert_paths, settings, on_group)
    from bdc_ray.serve.engine import Engine

    device = str(worker_device(settings.device))  # auto: the GPU this replica holds, else the CPU
    solver = load_customized(
        args.hypernet, base_model=base, expert_paths=expert_paths, device=device,
        max_batch_size=settings.batching.max_batch_size,
    )
    return Engine(solver, on_group=on_group, max_rows=settings.batching.max_batch_size, join=settings.batching.enabled)


@serve.deployment(name="BDCSolver")
@serve.ingress(fastapi_app)
class SolverDeployment:
    def __init__(self, args: dict[str, Any]) -> None:
        from bdc_ray.sandbox import Sandbox

        self.args = AppArgs.model_validate(args)
        self.settings = self.args.settings
        self.auth = make_auth(self.settings)  # before the model: a misconfigured key fails fast
        self.engine = load_engine(self.args)
        self.sandbox = Sandbox(workers=self.settings.solve.sandbox_workers, limits=self.settings.solve.sandbox_limits)
        batching = self.settings.batching

        async def decode_batch(jobs: list[GenJob]) -> AsyncIterator[list[Any]]:
            """The batch joins the engine's running decode; each item hands every request its rows' events."""
            async for per_job in self.engine.astream(jobs):
                yield per_job

        # Built here, not as a decorated method, so that every knob comes from the config. serve.batch
        # groups the requests that arrive together (one prefill each); the engine's running decode
        # takes every group in as soon as it has room, so serve.batch must never hold one back: as
        # many groups in flight as requests (Serve then warns that max_batch_size x groups exceeds
        # max_ongoing_requests, which is true and harmless here).
        self._batched = serve.batch(max_batch_size=batching.max_batch_size,
                                    batch_wait_timeout_s=batching.batch_wait_timeout_s,
                                    max_concurrent_batches=self.settings.max_ongoing_requests,
                                    batch_size_fn=job_rows)(decode_batch)
        self.replica = serve.get_replica_context().replica_tag
        log.info("replica %s ready: %s engine, experts %s, auth %s", self.replica, self.engine.name,
                 self.engine.expert_names, "on" if self.auth.enabled else "off")

    # -- generation -------------------------------------------------------------------------

    async def _alone(self, job: GenJob) -> AsyncIterator[list[JobEvent]]:
        async for (events,) in self.engine.astream([job]):
            if events is StopIteration:
                return
            yield events

    async def _part_events(self, part: GenJob) -> AsyncIterator[JobEvent]:
        source = self._batched(part) if self.settings.batching.enabled else self._alone(part)
        async for events in source:
            for event in events:
                yield event

    async def _events(self, job: GenJob) -> AsyncIterator[JobEvent]:
        """A job's decode events as they happen: through serve.batch (its batch joins the running
        decode), or alone when batching is off; a job of more rows than a batch holds runs as parts."""
        parts = job.split(self.settings.batching.max_batch_size)
        async for _, event in merged([self._part_events(part) for part in parts]):
            yield event

    async def _candidates(self, job: GenJob) -> AsyncIterator[tuple[int, Completion]]:
        """A job's samples as each one ends; however the caller stops, the job's rows stop too."""
        try:
            async for event in self._events(job):
                if event.done is not None:
                    for index in job.choices(event.sample):
                        yield index, event.done
        finally:
            job.cancel.set()

    async def _generate(self, job: GenJob) -> GenOutput:
        """All of a job's samples, in order."""
        finished = {}
        try:
            async for event in self._events(job):
                if event.done is not None:
                    finished[event.sample] = event.done
        finally:
            job.cancel.set()
        return self.engine.output(job, finished)

    async def _run_one(self, code: str, tests: list) -> Any:
        result = await asyncio.to_thread(self.sandbox.run, code, tests)
        add(sandbox_metrics()["runs"], 1, {"status": result.status})  # the same counter the sandbox actors feed
        return result

    # -- request plumbing -------------------------------------------------------------------

    async def _read(self, request: Request, model: type[BaseModel]) -> Any:
        """Authenticate, then read at most max_body_bytes, then validate: the cheap refusals first."""
        self.auth.check(request.headers.get("authorization"))
        limit = self.settings.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise APIError(413, f"the request body is {declared} bytes; the limit is {limit}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise APIError(413, f"the request body exceeds the limit of {limit} bytes")
        return parse_body(model, bytes(body))

    def _served(self, model: str) -> None:
        if model != self.settings.model_name:
            raise APIError(404, f"model {model!r} not found; this server serves {self.settings.model_name!r}",
                           "not_found_error", param="model")

    # -- routes -----------------------------------------------------------------------------

    @fastapi_app.get("/healthz")
    async def healthz(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "model": self.settings.model_name,
            "replica": self.replica,
            "experts": self.engine.expert_names,
            "engine": self.engine.name,
            "batching": self.settings.batching.enabled,
            "batches": self.engine.stats_snapshot(),
        }

    @fastapi_app.get("/v1/models")
    async def models(self, request: Request) -> dict[str, Any]:
        self.auth.check(request.headers.get("authorization"))
        return {
            "object": "list",
            "data": [{"id": self.settings.model_name, "object": "model", "created": 0, "owned_by": "bdc-ray"}],
        }

    def _sampling(self, body: CompletionRequest | ChatCompletionRequest, max_tokens: int) -> SamplingParams:
        return SamplingParams(temperature=body.temperature, top_p=body.top_p, max_new_tokens=max_tokens,
                              stop=body.stops(), seed=body.seed)

    def _stream(self, kind: str, rid: str, body: CompletionRequest | ChatCompletionRequest, jobs: list[GenJob],
                logprobs: bool) -> StreamingResponse:
        writer = ChunkWriter(kind, rid, int(time.time()), body.model, body.include_usage)  # type: ignore[arg-type]
        prompt_tokens = sum(self.engine.count_tokens(job.prompt, job.specials) for job in jobs)
        chunks = completion_stream(writer, jobs, [self._events(job) for job in jobs], body.n, prompt_tokens, logprobs)
        return StreamingResponse(chunks, media_type=MEDIA_TYPE, headers=HEADERS)

    async def _generate_all(self, jobs: list[GenJob]) -> tuple[list[Completion], Usage]:
        try:
            outputs = await asyncio.gather(*(self._generate(job) for job in jobs))
        finally:
            for job in jobs:  # one prompt failing stops the others' rows too
                job.cancel.set()
        samples = [c for o in outputs for c in o.completions]
        return samples, Usage.of(sum(o.prompt_tokens for o in outputs), sum(o.completion_tokens for o in outputs))

    @fastapi_app.post("/v1/completions", response_model=CompletionResponse, openapi_extra=_body(CompletionRequest),
                      responses={**ERRORS, **STREAMS})
    async def completions(self, request: Request) -> Any:
        body: CompletionRequest = await self._read(request, CompletionRequest)
        self._served(body.model)
        check_completion(body, self.settings.limits)
        self.engine.check_options(body.stream, body.logprobs is not None)
        rid = f"cmpl-{uuid.uuid4().hex}"
        sampling = self._sampling(body, body.max_tokens)
        jobs = [GenJob.make(p, body.problem or routing_text_of(p), body.n, sampling, logprobs=body.logprobs,
                            request_id=rid) for p in body.prompts()]
        for job in jobs:
            self.engine.check_fits(job.prompt, body.max_tokens)
        if body.stream:
            return self._stream("completion", rid, body, jobs, body.logprobs is not None)
        samples, usage = await self._generate_all(jobs)
        choices = [Choice(index=i, text=c.text, finish_reason=c.finish_reason,
                          logprobs=None if c.logprobs is None else CompletionLogprobs.of(c.logprobs))
                   for i, c in enumerate(samples)]
        return CompletionResponse(id=rid, created=int(time.time()), model=body.model, choices=choices, usage=usage)

    @fastapi_app.post("/v1/chat/completions", response_model=ChatCompletionResponse,
                      openapi_extra=_body(ChatCompletionRequest), responses={**ERRORS, **STREAMS})
    async def chat_completions(self, request: Request) -> Any:
        body: ChatCompletionRequest = await self._read(request, ChatCompletionRequest)
        self._served(body.model)
        check_chat(body, self.settings.limits)
        self.engine.check_options(body.stream, body.logprobs)
        prompt, specials = self.engine.render_chat(body.messages)
        max_tokens = body.new_tokens
        if max_tokens is None:  # what fits after the prompt, up to the limit
            room = self.engine.room(prompt, specials)
            max_tokens = max(1, min(self.settings.limits.max_tokens, room if room is not None else 1 << 30))
        self.engine.check_fits(prompt, max_tokens, specials)
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        job = GenJob.make(prompt, body.problem or routing_text(body.messages), body.n,
                          self._sampling(body, max_tokens), specials=specials, logprobs=body.top, request_id=rid)
        if body.stream:
            return self._stream("chat", rid, body, [job], body.logprobs)
        samples, usage = await self._generate_all([job])
        choices = [ChatChoice(index=i, message=AssistantMessage(content=c.text), finish_reason=c.finish_reason,
                              logprobs=None if c.logprobs is None else ChatLogprobs.of(c.logprobs))
                   for i, c in enumerate(samples)]
        return ChatCompletionResponse(id=rid, created=int(time.time()), model=body.model, choices=choices, usage=usage)

    @fastapi_app.post("/solve", response_model=SolveResponse, openapi_extra=_body(SolveRequest),
                      responses={**ERRORS, **STREAMS})
    async def solve_route(self, request: Request) -> Any:
        body: SolveRequest = await self._read(request, SolveRequest)
        limits = self.settings.limits
        check_solve(body, limits)
        problem, tests = solve_inputs(body)
        check_text("problem", problem, limits.max_prompt_chars)
        check_tests(tests, limits)
        if body.max_tokens is None:
            # The configured default, shortened to what fits after this prompt in the model's context.
            room = self.engine.room(prompt_text(problem))
            if room is not None and room < self.settings.solve.max_tokens:
                body = body.model_copy(update={"max_tokens": max(1, room)})
        routing = await self._routing(problem)
        events = solve_events(body, problem, tests, self.settings.solve, self._candidates, self._run_one, routing)
        if body.stream:
            return StreamingResponse(self._solve_stream(events), media_type=MEDIA_TYPE, headers=HEADERS)
        answer = [e async for e in events][-1].data
        self._count_solve(answer)
        return answer

    async def _solve_stream(self, events: AsyncIterator[SolveEvent]) -> AsyncIterator[bytes]:
        try:
            async for event in events:
                if event.name == "result":
                    self._count_solve(event.data)
                yield sse(event.data.model_dump(mode="json"), event.name)
        except Exception as err:  # noqa: BLE001 - the status is sent: the error goes in the stream
            yield error_event(err)

    @staticmethod
    def _count_solve(answer: Any) -> None:
        if answer.verified is not None:
            serve_metrics()["solve"].inc(1, {"verified": str(answer.verified).lower()})

    @fastapi_app.get("/v1/routing", response_model=RoutingResponse, responses=ERRORS, openapi_extra={"parameters": [
        {"name": "problem", "in": "query", "required": True, "schema": {"type": "string"}}]})
    async def routing_get(self, request: Request) -> RoutingResponse:
        self.auth.check(request.headers.get("authorization"))
        problems = request.query_params.getlist("problem")
        if len(problems) != 1 or not problems[0]:
            raise APIError(400, "give exactly one non-empty query parameter `problem`", param="problem")
        return await self._routed(problems[0])

    @fastapi_app.post("/v1/routing", response_model=RoutingResponse, openapi_extra=_body(RoutingRequest),
                      responses=ERRORS)
    async def routing_post(self, request: Request) -> RoutingResponse:
        body: RoutingRequest = await self._read(request, RoutingRequest)
        return await self._routed(body.problem)

    @fastapi_app.get("/runs/{run}/{name}", responses=ERRORS)
    async def run_file_route(self, run: str, name: str, request: Request) -> Response:
        self.auth.check(request.headers.get("authorization"))
        body, headers = await asyncio.to_thread(run_file, self.args.runs, run, name)
        return Response(body, headers=headers)

    async def _routed(self, problem: str) -> RoutingResponse:
        check_text("problem", problem, self.settings.limits.max_prompt_chars)
        return await self._routing(problem)

    async def _routing(self, problem: str) -> RoutingResponse:
        return (await asyncio.to_thread(self.engine.routing, [problem]))[0]


def build_app(args: dict[str, Any] | AppArgs) -> Application:
    """The application builder named in the Serve config (`import_path`): args -> a bound deployment.

    The deployment options come from the same `serve:` settings the YAML repeats, so
    `serve.run(build_app(args))` and `serve run FILE` start the same thing.
    """
    try:
        parsed = args if isinstance(args, AppArgs) else AppArgs.model_validate(args)
    except ValidationError as err:
        raise ValueError(f"bad application args for {__name__}.build_app: {validation_message(err)}") from None
    options = deployment_options(parsed.settings)
    return SolverDeployment.options(**options).bind(parsed.model_dump(mode="json"))
