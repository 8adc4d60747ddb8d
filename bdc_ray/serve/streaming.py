"""Server-sent events: OpenAI's chunk format for both completion endpoints, and /solve's progress.

A streamed completion is the same decode as an unstreamed one (engine.py), read as it goes: each
decode step's new text of a choice becomes one chunk, `finish_reason` comes in the choice's last
chunk, the usage of the whole request in a chunk of its own (no choices) when
`stream_options.include_usage` is set, and `data: [DONE]` ends the stream. An error after the
stream has started cannot change the HTTP status any more: it is sent as an event carrying the
usual error object, which OpenAI's client raises. When the client goes away, the response's
iterator is cancelled and its jobs' `cancel` is set: their rows leave the batch at the next step.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from bdc_ray.serve.api import APIError, ChatLogprobs, CompletionLogprobs, Usage
from bdc_ray.serve.engine import GenJob, JobEvent

log = logging.getLogger(__name__)

T = TypeVar("T")
DONE = b"data: [DONE]\n\n"
MEDIA_TYPE = "text/event-stream"
HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}  # no proxy may hold chunks back


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event (a JSON `data` line, optionally named)."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return ((f"event: {event}\n" if event else "") + f"data: {body}\n\n").encode()


def error_event(err: BaseException) -> bytes:
    if isinstance(err, APIError):
        return sse(err.body())
    log.exception("error in a stream", exc_info=err)
    return sse(APIError(500, f"internal error ({type(err).__name__}); the stream was cut short", "server_error").body())


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_EXHAUSTED = object()


async def merged(sources: Sequence[AsyncIterator[T]]) -> AsyncIterator[tuple[int, T]]:
    """The items of several async iterators as they come, each with its source's index."""
    if len(sources) == 1:
        async for item in sources[0]:
            yield 0, item
        return
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(i: int, source: AsyncIterator[T]) -> None:
        try:
            async for item in source:
                queue.put_nowait((i, item))
            queue.put_nowait((i, _EXHAUSTED))
        except Exception as err:  # noqa: BLE001 - re-raised by the consumer below
            queue.put_nowait((i, _Failed(err)))

    tasks = [asyncio.ensure_future(pump(i, s)) for i, s in enumerate(sources)]
    try:
        left = len(tasks)
        while left:
            i, item = await queue.get()
            if item is _EXHAUSTED:
                left -= 1
            elif isinstance(item, _Failed):
                raise item.error
            else:
                yield i, item
    finally:
        for task in tasks:
            task.cancel()


@dataclass
class ChunkWriter:
    """The chunks of one streamed request, in the shape of its endpoint."""

    kind: Literal["completion", "chat"]
    id: str
    created: int
    model: str
    include_usage: bool
    _offsets: dict[int, int] = field(default_factory=dict)

    def _chunk(self, choices: list[dict[str, Any]]) -> bytes:
        obj = "text_completion" if self.kind == "completion" else "chat.completion.chunk"
        chunk: dict[str, Any] = {"id": self.id, "object": obj, "created": self.created, "model": self.model,
                                 "choices": choices}
        if self.include_usage:
            chunk["usage"] = None
        return sse(chunk)

    def opening(self, choices: int) -> list[bytes]:
        """A chat stream names the speaker first, once per choice."""
        if self.kind != "chat":
            return []
        return [self._chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                              "finish_reason": None}]) for i in range(choices)]

    def piece(self, index: int, event: JobEvent, logprobs: bool) -> list[bytes]:
        """The chunks of one choice's event: its text (if any), then its end (if it ended)."""
        out = []
        if event.text or event.logprobs:
            offset = self._offsets.get(index, 0)
            self._offsets[index] = offset + len(event.text)
            if self.kind == "completion":
                lp = CompletionLogprobs.of(event.logprobs, offset).model_dump() if logprobs else None
                out.append(self._chunk([{"index": index, "text": event.text, "logprobs": lp, "finish_reason": None}]))
            else:
                lp = ChatLogprobs.of(event.logprobs).model_dump() if logprobs else None
                out.append(self._chunk([{"index": index, "delta": {"content": event.text}, "logprobs": lp,
                                         "finish_reason": None}]))
        if event.done is not None:
            end: dict[str, Any] = {"index": index, "logprobs": None, "finish_reason": event.done.finish_reason}
            end.update({"text": ""} if self.kind == "completion" else {"delta": {}})
            out.append(self._chunk([end]))
        return out

    def usage(self, usage: Usage) -> bytes:
        obj = "text_completion" if self.kind == "completion" else "chat.completion.chunk"
        return sse({"id": self.id, "object": obj, "created": self.created, "model": self.model, "choices": [],
                    "usage": usage.model_dump()})


async def completion_stream(
    writer: ChunkWriter, jobs: list[GenJob], sources: Sequence[AsyncIterator[JobEvent]], n: int, prompt_tokens: int,
    logprobs: bool,
) -> AsyncIterator[bytes]:
    """A completion request's whole SSE body; choice `p * n + c` is sample c of prompt p."""
    tokens = 0
    try:
        for chunk in writer.opening(len(jobs) * n):
            yield chunk
        async for p, event in merged(sources):
            for c in jobs[p].choices(event.sample):
                for chunk in writer.piece(p * n + c, event, logprobs):
                    yield chunk
                tokens += event.done.tokens if event.done is not None else 0
        if writer.include_usage:
            yield writer.usage(Usage.of(prompt_tokens, tokens))
        yield DONE
    except Exception as err:  # noqa: BLE001 - the status is sent: the error goes in the stream
        yield error_event(err)
    finally:
        for job in jobs:
            job.cancel.set()
