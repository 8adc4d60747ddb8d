"""Any OpenAI-compatible endpoint: a `vllm serve` on the cluster, this project's own server, or an API.

One HTTP request per prompt (with `n` samples), a bounded number in flight, so many concurrent
tree searches share an endpoint without overrunning it. Transient failures (429, 5xx, timeouts,
dropped connections) are retried with exponential backoff; anything else fails at once with the
status, URL and the server's own message.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
import weakref
from dataclasses import dataclass
from typing import Any

import httpx

from bdc_ray.llm.base import BaseLLM, GenerationStats, SamplingParams, Texts, run_blocking, truncate_at_stop
from bdc_ray.llm.chat import fit_prompt, warn_truncated

# Overload and server faults pass; any other 4xx is the request's fault and fails the same way again.
RETRYABLE_STATUS = frozenset({429}) | frozenset(range(500, 600))
MAX_BACKOFF_S = 30.0
# A server's own Retry-After is trusted further than our guess, but not indefinitely.
MAX_RETRY_AFTER_S = 120.0


class OpenAIBackendError(RuntimeError):
    """A request to an OpenAI-compatible server failed for good.

    It crosses process boundaries (an agent actor raises it, the Boost driver reads it), so it
    pickles by its message and attributes: the default re-calls `__init__` with the formatted
    message alone, which the subclasses' signatures refuse, and Ray then reports "Failed to
    deserialize exception" in place of the server's answer."""

    def __reduce__(self):
        return _rebuild_error, (type(self), str(self), dict(self.__dict__))


def _rebuild_error(cls: type[OpenAIBackendError], message: str, state: dict[str, Any]) -> OpenAIBackendError:
    error = cls.__new__(cls)
    RuntimeError.__init__(error, message)
    error.__dict__.update(state)
    return error


class OpenAIHTTPError(OpenAIBackendError):
    def __init__(self, status_code: int, url: str, message: str, attempts: int) -> None:
        self.status_code = status_code
        self.url = url
        self.message = message
        self.attempts = attempts
        super().__init__(f"HTTP {status_code} from POST {url} after {attempts} attempt(s): {message}")


class OpenAITimeoutError(OpenAIBackendError):
    def __init__(self, url: str, timeout_s: float, attempts: int) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.attempts = attempts
        super().__init__(f"POST {url} timed out after {timeout_s:g} s on each of {attempts} attempt(s)")


class OpenAIConnectionError(OpenAIBackendError):
    def __init__(self, url: str, cause: Exception, attempts: int) -> None:
        self.url = url
        self.attempts = attempts
        super().__init__(f"POST {url} failed after {attempts} attempt(s): {type(cause).__name__}: {cause}")


@dataclass
class _LoopSession:
    """An httpx client and a semaphore belong to the event loop that created them."""

    client: httpx.AsyncClient
    slots: asyncio.Semaphore


class OpenAICompatibleLLM(BaseLLM):
    """Completions (`/completions`) or chat (`/chat/completions`, the prompt as one user message).

    An adapter is addressed as the request's `model`, which is how vLLM's server exposes LoRA
    adapters (`--lora-modules name=path`).

    Only the server knows its context and tokenizer, and an over-long prompt is the server's
    call (transformers serve and vLLM refuse it with a 400 naming the limit). Given the
    served model's tokenizer folder and context, the client cuts prompts from the left itself,
    exactly as the transformers backend does (chat.py), so a search never meets that 400.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        chat: bool = False,
        context: int | None = None,
        tokenizer: str | None = None,
        max_concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_base_s: float = 0.5,
        name: str | None = None,
    ) -> None:
        self.name = name or f"openai:{model}"
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.chat = chat
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self._api_key_env = api_key_env
        if (context is None) != (tokenizer is None):
            raise ValueError("cutting prompts client-side needs both context and tokenizer")
        self.context = context
        self._tokenizer_path = tokenizer
        self._tokenizer = None
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopSession] = weakref.WeakKeyDictionary()

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions" if self.chat else f"{self.base_url}/completions"

    def generate_with_stats(
        self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None
    ) -> tuple[Texts, GenerationStats]:
        async def once() -> tuple[Texts, GenerationStats]:
            # A loop made for one blocking call ends with it; so does its client.
            session = self._make_session()
            try:
                return await self._generate(session, prompts, sampling, adapter)
            finally:
                await session.client.aclose()

        return run_blocking(once)

    async def agenerate_with_stats(
        self, prompts: list[str], sampling: SamplingParams, adapter: str | None = None
    ) -> tuple[Texts, GenerationStats]:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None:
            session = self._sessions[loop] = self._make_session()
        return await self._generate(session, prompts, sampling, adapter)

    async def aclose(self) -> None:
        """Close the connection pool of the current event loop's session."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.client.aclose()

    async def _generate(
        self, session: _LoopSession, prompts: list[str], sampling: SamplingParams, adapter: str | None
    ) -> tuple[Texts, GenerationStats]:
        start = time.perf_counter()
        bodies = [self._request_body(p, sampling, adapter, limit) for p, limit in self._fit(prompts, sampling)]
        replies = await asyncio.gather(*(self._post(session, body) for body in bodies))
        texts: Texts = []
        stats = GenerationStats()
        for reply in replies:
            texts.append([truncate_at_stop(t, sampling.stop) for t in _choice_texts(reply, self.chat)])
            usage = reply.get("usage") or {}
            stats += GenerationStats(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            )
        stats.seconds = time.perf_counter() - start
        return texts, stats

    def _fit(self, prompts: list[str], sampling: SamplingParams) -> list[tuple[str, int]]:
        """(prompt, max_tokens) per request: prompts cut to the served context when it is known,
        and max_tokens lowered so prompt and answer fit it together (servers refuse a request whose
        sum exceeds the context). Chat sends the cut content; the server renders its template,
        whose tokens the local copy of the template counted."""
        if self.context is None:
            return [(p, sampling.max_new_tokens) for p in prompts]
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self._tokenizer_path)
        chat = self.chat and bool(getattr(self._tokenizer, "chat_template", None))
        fitted = [
            fit_prompt(self._tokenizer, p, context=self.context, max_new_tokens=sampling.max_new_tokens, chat=chat)
            for p in prompts
        ]
        warn_truncated(self.name, fitted, self.context)
        return [(f.content, max(1, min(sampling.max_new_tokens, self.context - f.tokens))) for f in fitted]

    def _request_body(
        self, prompt: str, sampling: SamplingParams, adapter: str | None, max_tokens: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": adapter or self.model,
            "n": sampling.n,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": max_tokens,
        }
        if self.chat:
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        return body

    async def _post(self, session: _LoopSession, body: dict[str, Any]) -> dict[str, Any]:
        url = self.url
        attempt = 0
        while True:
            attempt += 1
            final = attempt > self.max_retries
            try:
                async with session.slots:
                    response = await session.client.post(url, json=body)
            except httpx.TimeoutException:
                if final:
                    raise OpenAITimeoutError(url, self.timeout_s, attempt) from None
                await asyncio.sleep(self._backoff(attempt))
                continue
            except httpx.TransportError as exc:
                if final:
                    raise OpenAIConnectionError(url, exc, attempt) from exc
                await asyncio.sleep(self._backoff(attempt))
                continue
            if response.is_success:
                try:
                    return response.json()
                except ValueError:
                    raise OpenAIHTTPError(
                        response.status_code, url, f"response is not JSON: {response.text[:200]!r}", attempt
                    ) from None
            if response.status_code not in RETRYABLE_STATUS or final:
                raise OpenAIHTTPError(response.status_code, url, _error_message(response), attempt)
            delay = _retry_after_seconds(response.headers.get("retry-after"))
            await asyncio.sleep(self._backoff(attempt) if delay is None else min(delay, MAX_RETRY_AFTER_S))

    def _backoff(self, attempt: int) -> float:
        """Exponential with full jitter, so clients that failed together do not retry together."""
        return random.uniform(0.0, min(MAX_BACKOFF_S, self.backoff_base_s * 2 ** (attempt - 1)))

    def _make_session(self) -> _LoopSession:
        headers = {}
        key = os.environ.get(self._api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(self.timeout_s),
            limits=httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency),
        )
        return _LoopSession(client=client, slots=asyncio.Semaphore(self.max_concurrency))


def _choice_texts(reply: dict[str, Any], chat: bool) -> list[str]:
    choices = sorted(reply.get("choices") or [], key=lambda c: c.get("index", 0))
    if chat:
        return [((c.get("message") or {}).get("content") or "") for c in choices]
    return [c.get("text") or "" for c in choices]


def _error_message(response: httpx.Response) -> str:
    """The server's own explanation: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or the body."""
    try:
        payload = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if "detail" in payload:
            return str(payload["detail"])[:500]
    return str(payload)[:500]


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
