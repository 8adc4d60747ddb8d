"""What the Serve app shows of run folders: each run's report files (the tree explorer, report.md
and its plots) under /runs/<run>/<file>, read from storage as `bdc report` wrote them.

Only the flat report folder is reachable: names are checked against a pattern (no path
separators, no leading dot, known suffixes), so a request can never walk out of it. A replica
reads the same `storage_path` the pipeline wrote to; when that is a folder on another machine's
disk, or the page was never built, the answer is a 404 that says which.
"""

from __future__ import annotations

import re

from bdc_ray import storage
from bdc_ray.serve.api import APIError

NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".md": "text/markdown; charset=utf-8", ".png": "image/png"}


def _not_found(message: str) -> APIError:
    return APIError(404, message, "not_found_error")


def run_file(runs: str | None, run: str, name: str) -> tuple[bytes, dict[str, str]]:
    """The bytes of `<runs>/<run>/report/<name>` and the response headers to send them with."""
    suffix = name[name.rfind("."):] if "." in name else ""
    if not NAME.match(run) or not NAME.match(name) or suffix not in MEDIA_TYPES:
        raise _not_found(f"no such run file: {run}/{name} (runs/<run>/<file> serves {', '.join(MEDIA_TYPES)} files "
                         "of a run's report folder)")
    if runs is None:
        raise _not_found("this application serves no run folders: start it with `bdc serve` from a config, whose "
                         "storage_path it then serves")
    run_dir = storage.join(runs, run)
    if not storage.exists(run_dir):
        raise _not_found(f"run folder {run_dir} is not readable from this replica: it does not exist here, or "
                         "storage_path is on another machine's disk (put it on shared or object storage)")
    path = storage.join(run_dir, "report", name)
    if not storage.exists(path):
        raise _not_found(f"{path} does not exist: build the run's report with `bdc report {run_dir}`")
    fs, local = storage.filesystem(path)
    # The explorer carries its own Content-Security-Policy (no fetch of any kind) in the page.
    return fs.cat_file(local), {"content-type": MEDIA_TYPES[suffix], "x-content-type-options": "nosniff"}
