"""The Ray Serve application: a FastAPI ingress over replicas that each hold base + experts + hypernetwork.

    serve run serve_config.yaml                       # the file `bdc serve config` writes
    serve.run(build_app({"hypernet": ..., "experts": ..., "settings": {...}}))

Routes (relative to the route prefix):
- GET  /healthz          liveness and batching figures of the answering replica (no auth)
- GET  /v1/models        the served model id (OpenAI-compatible)
- POST /v1/completions   OpenAI-compatible completions; each prompt routed by its own problem statement
- POST /solve            problem (+ tests) -> program; candidates verified in the replica's sandbox
- GET|POST /v1/routing   the expert weights the hypernetwork gives a problem
- GET  /runs/<run>/<file> a run's report files: explorer.html (Boost's trees), report.md, plots

Every request is authenticated (when a key is configured), size-capped while its body is
read, validated, and checked against the limits before it can reach the model or the sandbox;
every error is a JSON object with a message. Generation goes through serve.batch: concurrent
requests become one batch, and each sampling group of it one forward pass in which every row
carries its own routing weights (engine.py).
"""

# No `from __future__ import annotations` here: Serve's class-based views hand FastAPI the route
# signatures as they are, and a string annotation `Request` would be read as a query parameter.
import asyncio
import logging
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from ray import serve
from ray.serve import Application
from starlette.exceptions import HTTPException as StarletteHTTPException

from bdc_ray.llm.base import SamplingParams
from bdc_ray.metrics import add, sandbox_metrics
from bdc_ray.problems.prompt_format import prompt_text
from bdc_ray.serve.api import (
    APIError,
    Choice,
    CompletionRequest,
    CompletionResponse,
    RoutingRequest,
    RoutingResponse,
    SolveRequest,
    SolveResponse,
    Usage,
    check_completion,
    check_solve,
    check_text,
    parse_body,
    validation_message,
)
from bdc_ray.serve.auth import make_auth
from bdc_ray.serve.deploy_config import AppArgs, deployment_options
from bdc_ray.serve.engine import Engine, GenJob, GenOutput, job_rows, routing_text_of
from bdc_ray.serve.metrics import serve_metrics
from bdc_ray.serve.run_files import run_file
from bdc_ray.serve.solve import solve

log = logging.getLogger(__name__)

fastapi_app = FastAPI(title="bdc-ray customized solver", version="1")
REPLICA_HEADER = "x-bdc-replica"


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


def load_engine(args: AppArgs) -> Engine:
    """The solver a user deploys: hypernetwork folder + experts manifest (+ base model override)."""
    import torch

    from bdc_ray.artifacts.experts import load_manifest
    from bdc_ray.customize import load_customized, load_meta

    settings = args.settings
    base, expert_paths = args.base_model, None
    if args.experts is not None:
        manifest = load_manifest(args.experts)
        by_name = {e.name: e.path for e in manifest.experts}
        wanted = [e.name for e in load_meta(args.hypernet).experts]
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise ValueError(
                f"the hypernetwork at {args.hypernet} mixes experts {wanted}, but {args.experts}/manifest.json has no "
                f"entry for {missing} (it lists {sorted(by_name)})"
            )
        expert_paths = [by_name[n] for n in wanted]
        base = base or manifest.base_model
    device = settings.device if settings.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    solver = load_customized(
        args.hypernet, base_model=base, expert_paths=expert_paths, device=device,
        max_batch_size=settings.batching.max_batch_size,
    )
    return Engine(solver, on_group=lambda rows: serve_metrics()["batch_rows"].observe(rows))


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
        self._batched.set_max_batch_size(self.settings.batching.max_batch_size)
        self._batched.set_batch_wait_timeout_s(self.settings.batching.batch_wait_timeout_s)
        self.replica = serve.get_replica_context().replica_tag
        log.info("replica %s ready: experts %s, auth %s", self.replica, self.engine.expert_names,
                 "on" if self.auth.enabled else "off")

    # -- generation -------------------------------------------------------------------------

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02, batch_size_fn=job_rows)
    async def _batched(self, jobs: list[GenJob]) -> list[GenOutput]:
        return await asyncio.to_thread(self.engine.run, jobs)

    async def _generate(self, job: GenJob) -> GenOutput:
        """One job's samples: through serve.batch (shared forward passes), or alone when batching is off."""
        self.engine.check_fits(job.prompt, job.sampling.max_new_tokens)
        parts = job.split(self.settings.batching.max_batch_size)
        if self.settings.batching.enabled:
            outputs = await asyncio.gather(*(self._batched(part) for part in parts))
        else:
            outputs = await asyncio.to_thread(self.engine.run, parts)
        return GenOutput([c for o in outputs for c in o.completions], prompt_tokens=outputs[0].prompt_tokens)

    async def _run_tests(self, jobs):
        results = await asyncio.to_thread(self.sandbox.run_many, jobs)
        runs = sandbox_metrics()["runs"]
        for r in results:
            add(runs, 1, {"status": r.status})  # the same counter the sandbox actors feed
        return results

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

    @fastapi_app.post("/v1/completions", response_model=CompletionResponse)
    async def completions(self, request: Request) -> CompletionResponse:
        body: CompletionRequest = await self._read(request, CompletionRequest)
        self._served(body.model)
        check_completion(body, self.settings.limits)
        sampling = SamplingParams(
            temperature=body.temperature, top_p=body.top_p, max_new_tokens=body.max_tokens, stop=body.stops(),
            seed=body.seed,
        )
        jobs = [GenJob.make(p, body.problem or routing_text_of(p), body.n, sampling) for p in body.prompts()]
        for job in jobs:
            self.engine.check_fits(job.prompt, body.max_tokens)
        outputs = await asyncio.gather(*(self._generate(job) for job in jobs))
        samples = [c for o in outputs for c in o.completions]
        prompt_tokens = sum(o.prompt_tokens for o in outputs)
        completion_tokens = sum(o.completion_tokens for o in outputs)
        return CompletionResponse(
            id=f"cmpl-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=body.model,
            choices=[Choice(index=i, text=c.text, finish_reason=c.finish_reason) for i, c in enumerate(samples)],
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                        total_tokens=prompt_tokens + completion_tokens),
        )

    @fastapi_app.post("/solve", response_model=SolveResponse)
    async def solve_route(self, request: Request) -> SolveResponse:
        body: SolveRequest = await self._read(request, SolveRequest)
        check_solve(body, self.settings.limits)
        if body.max_tokens is None:
            # The configured default, shortened to what fits after this prompt in the model's context.
            room = self.engine.room(prompt_text(body.problem))
            if room is not None and room < self.settings.solve.max_tokens:
                body = body.model_copy(update={"max_tokens": max(1, room)})
        routing = await self._routing(body.problem)
        answer = await solve(body, self.settings.solve, self._generate, self._run_tests, routing)
        if answer.verified is not None:
            serve_metrics()["solve"].inc(1, {"verified": str(answer.verified).lower()})
        return answer

    @fastapi_app.get("/v1/routing", response_model=RoutingResponse)
    async def routing_get(self, request: Request) -> RoutingResponse:
        self.auth.check(request.headers.get("authorization"))
        problems = request.query_params.getlist("problem")
        if len(problems) != 1 or not problems[0]:
            raise APIError(400, "give exactly one non-empty query parameter `problem`", param="problem")
        return await self._routed(problems[0])

    @fastapi_app.post("/v1/routing", response_model=RoutingResponse)
    async def routing_post(self, request: Request) -> RoutingResponse:
        body: RoutingRequest = await self._read(request, RoutingRequest)
        return await self._routed(body.problem)

    @fastapi_app.get("/runs/{run}/{name}")
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
