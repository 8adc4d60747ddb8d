"""Checks shared by the schema modules.

Records come from public dumps whose fields are sometimes missing, empty or of the wrong
type; checking them here turns what would be a `KeyError` deep in a converter into a reason
the loader can report next to the record's line.
"""

from __future__ import annotations

import json
from typing import Any


class BadRecord(ValueError):
    """A record that cannot become a Problem; the loader reports it and loads the rest."""


def require(record: dict[str, Any], *keys: str) -> None:
    missing = [k for k in keys if k not in record]
    if missing:
        raise BadRecord(f"missing keys: {', '.join(missing)}")


def text(record: dict[str, Any], key: str) -> str:
    value = record[key]
    if not isinstance(value, str):
        raise BadRecord(f"{key} must be a string, got {type(value).__name__}")
    return value


def strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRecord(f"{what} must be a list of strings")
    return value


def json_field(record: dict[str, Any], key: str) -> Any:
    """A field holding JSON text (APPS stores `solutions` and `input_output` so); "" is None."""
    raw = record.get(key)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise BadRecord(f"{key} must be a JSON string, got {type(raw).__name__}")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise BadRecord(f"{key} is not valid JSON: {err}") from None
