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
