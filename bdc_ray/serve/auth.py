"""Bearer-token auth for the HTTP API.

Ray's token auth protects the cluster (GCS, dashboard, jobs), not the requests Serve's HTTP
proxy forwards, so the application checks its own key. The key is read inside each replica,
from a mounted secret file or an environment variable, never from the Serve config YAML
(which the dashboard shows to anyone who can read it).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from bdc_ray.serve.api import APIError
from bdc_ray.serve.config import AuthSection, ServeConfig

MIN_KEY_CHARS = 16


class AuthConfigError(RuntimeError):
    """Auth is required but no usable key was found: the replica must not serve unauthenticated."""


def load_api_key(auth: AuthSection) -> str | None:
    """The key from `api_key_file` (first) or `api_key_env`; None when neither gives one."""
    if auth.api_key_file:
        path = Path(auth.api_key_file).expanduser()
        try:
            key = path.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise AuthConfigError(f"serve.auth.api_key_file {path}: cannot read it: {err}") from None
        if not key:
            raise AuthConfigError(f"serve.auth.api_key_file {path} is empty")
        return _checked(key, f"the key in {path}")
    if auth.api_key_env:
        key = os.environ.get(auth.api_key_env, "").strip()
        if key:
            return _checked(key, f"${auth.api_key_env}")
    return None


def _checked(key: str, source: str) -> str:
    if len(key) < MIN_KEY_CHARS:
        raise AuthConfigError(f"{source} has {len(key)} characters; use at least {MIN_KEY_CHARS} (e.g. `openssl rand -hex 32`)")
    return key


class BearerAuth:
    """Checks `Authorization: Bearer <key>` in constant time (no timing hint about the key)."""

    def __init__(self, key: str | None) -> None:
        # Digests have one length, so compare_digest's time does not even reveal the key's length.
        self._digest = hashlib.sha256(key.encode()).digest() if key else None

    @property
    def enabled(self) -> bool:
        return self._digest is not None

    def check(self, authorization: str | None) -> None:
        if self._digest is None:
            return
        scheme, _, token = (authorization or "").partition(" ")
        sent = hashlib.sha256(token.strip().encode()).digest()
        if not (hmac.compare_digest(sent, self._digest) and scheme.lower() == "bearer"):
            raise APIError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'", "authentication_error")


def make_auth(settings: ServeConfig) -> BearerAuth:
    """The replica's checker. A configured key is always enforced (except with require: never);
    when auth is required and no key is found, the replica refuses to start."""
    auth = settings.auth
    if auth.require == "never":
        return BearerAuth(None)
    key = load_api_key(auth)
    if settings.auth_required and key is None:
        sources = [f"file {auth.api_key_file}"] if auth.api_key_file else []
        sources += [f"${auth.api_key_env}"] if auth.api_key_env else []
        raise AuthConfigError(
            f"the API must require a key (serve.auth.require={auth.require!r}, serve.host={settings.host!r}) but none "
            "was found in " + (" or ".join(sources) or "any source: set serve.auth.api_key_env or api_key_file")
        )
    return BearerAuth(key)
