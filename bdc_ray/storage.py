"""Artifacts on local disk or object storage through one fsspec interface.

Stages meet only through files under `storage_path`; writing each finished unit atomically
is what makes every stage resumable (a reader never sees half a file, a re-run never sees
a unit twice).
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any, Iterable, Iterator

import fsspec
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem


def join(*parts: str) -> str:
    head, *rest = parts
    return "/".join([head.rstrip("/"), *(p.strip("/") for p in rest)])


def filesystem(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    return url_to_fs(path)


def exists(path: str) -> bool:
    fs, p = filesystem(path)
    return fs.exists(p)


def makedirs(path: str) -> None:
    fs, p = filesystem(path)
    fs.makedirs(p, exist_ok=True)


def write_text_atomic(path: str, text: str) -> None:
    """Write `text` so that readers see the old file or the whole new one, never a part."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Local files go through a temporary sibling and os.replace; object stores make a single
    PUT visible atomically on their own."""
    fs, p = filesystem(path)
    parent = p.rsplit("/", 1)[0] if "/" in p else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    if isinstance(fs, LocalFileSystem):
        tmp = f"{p}.tmp-{uuid.uuid4().hex}"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    else:
        with fs.open(p, "wb") as fh:
            fh.write(data)


def read_text(path: str) -> str:
    fs, p = filesystem(path)
    with fs.open(p, "rt", encoding="utf-8") as fh:
        return fh.read()


def read_json(path: str) -> Any:
    return json.loads(read_text(path))


def write_jsonl_atomic(path: str, records: Iterable[Any]) -> int:
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    write_text_atomic(path, "".join(line + "\n" for line in lines))
    return len(lines)


def write_json_atomic(path: str, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_jsonl(path: str) -> Iterator[dict[str, Any]]:
    with fsspec.open(path, "rt", compression="infer", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
