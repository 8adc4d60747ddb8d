#!/usr/bin/env bash
# One-time (idempotent) set-up: a virtualenv in .venv with the CPU build of torch first, then
# bdc-ray and its dependencies. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==${BDC_TORCH_VERSION:-2.13.0}"
# DeepSpeed builds no ops at install time; the one it needs on CPU is JIT-compiled on first use.
DS_BUILD_OPS=0 .venv/bin/python -m pip install --quiet -e ".[dev]"
# The tree explorer's browser test (tests/report/test_explorer_browser.py) drives Debian's Chromium
# through Playwright, which never downloads a browser of its own here: as root, install the OS package.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup.sh: installing Debian's chromium for the browser test (apt-get, 1-3 min the first time)"
  log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$log" 2>&1; then
    tail -5 "$log" >&2
    echo "setup.sh: WARNING: chromium could not be installed; tests/report/test_explorer_browser.py will fail" >&2
  fi
  rm -f "$log"
fi
