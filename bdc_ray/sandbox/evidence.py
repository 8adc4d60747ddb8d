"""Framing of the result channel: a record counts only if it carries the test's nonce.

The nonce is made by the worker after it forked the child and handed to the harness over a
pipe that is closed before untrusted code runs, so the program never sees it arrive; it is
not in the memory the child inherited. Anything on the channel that is not exactly one
well-formed record with the right nonce is no evidence at all.
"""

from __future__ import annotations

import json
from typing import Any

PREFIX = b"BDC-RESULT "
NONCE_BYTES = 16


def frame(nonce: bytes, payload: dict[str, Any]) -> bytes:
    return PREFIX + nonce.hex().encode() + b" " + json.dumps(payload, separators=(",", ":")).encode()


def unframe(data: bytes, nonce: bytes) -> dict[str, Any] | None:
    """The payload of `data` if it is exactly one record framed with `nonce`, else None."""
    head = PREFIX + nonce.hex().encode() + b" "
    if not data.startswith(head):
        return None
    try:
        payload = json.loads(data[len(head) :])
    except ValueError:
        return None
    return payload if type(payload) is dict else None
