"""Serve's own metrics, beside the ones Ray Serve exports per deployment (`ray_serve_*`).

- `bdc_serve_requests_total` {route, status}: HTTP requests answered, by route and status code.
- `bdc_serve_latency_ms` {route}: time from request to response inside the replica.
- `bdc_serve_batch_rows` {}: rows (prompts x samples) per group joining the running decode (a serve.batch batch).
- `bdc_serve_solve_total` {verified}: /solve answers with tests, by whether the returned program passed.
Created lazily inside the replica process, as Ray requires.
"""

from __future__ import annotations

from functools import lru_cache

from ray.util.metrics import Counter, Histogram

LATENCY_BOUNDARIES_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000]
ROWS_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128]


@lru_cache(maxsize=None)
def serve_metrics() -> dict:
    return {
        "requests": Counter("bdc_serve_requests", "HTTP requests answered by a replica.", tag_keys=("route", "status")),
        "latency": Histogram(
            "bdc_serve_latency_ms", "Request latency inside a replica, ms.", boundaries=LATENCY_BOUNDARIES_MS,
            tag_keys=("route",),
        ),
        "batch_rows": Histogram("bdc_serve_batch_rows", "Rows per group joining the running decode.", boundaries=ROWS_BOUNDARIES),
        "solve": Counter("bdc_serve_solve", "/solve answers with tests, by verification.", tag_keys=("verified",)),
    }
