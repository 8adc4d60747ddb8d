"""Which isolation this host allows, detected once per process, and the policy around it.

Detection enters the real namespaces in a throwaway interpreter (the same code a worker
runs), so "available" means "a worker will manage", not "the kernel has the feature".
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import threading
from dataclasses import dataclass

from bdc_ray.sandbox import launch, namespaces
from bdc_ray.sandbox.limits import Isolation

log = logging.getLogger(__name__)

_PROBE_UID = 65534  # nobody: the userns probe as root drops to it; nothing it creates outlives the probe
_warned = False
_warn_lock = threading.Lock()


class SandboxIsolationError(RuntimeError):
    """Namespace isolation was required but this host does not allow it."""


@dataclass(frozen=True)
class IsolationInfo:
    """The isolation a pool runs with; `mechanisms` lists what is actually in force."""

    mode: namespaces.Mode
    mechanisms: tuple[str, ...] = ()
    unavailable: str | None = None
    """Why namespaces are not used, when they are not."""


@functools.cache
def detect() -> IsolationInfo:
    """The strongest mode that works here: `namespaces` as root, else `userns`, else `none`."""
    candidates: list[namespaces.Mode] = ["namespaces", "userns"] if os.geteuid() == 0 else ["userns"]
    failures = []
    for mode in candidates:
        failure = _probe(mode)
        if failure is None:
            return IsolationInfo(mode)
        failures.append(f"{mode}: {failure}")
    return IsolationInfo("none", unavailable="; ".join(failures))


def resolve(requested: Isolation) -> IsolationInfo:
    """The mode a pool must use for `requested`, warning once per process on a fallback."""
    global _warned
    if requested == "off":
        return IsolationInfo("none", unavailable="disabled (isolation='off')")
    detected = detect()
    if detected.mode != "none":
        return detected
    if requested == "required":
        raise SandboxIsolationError(
            "isolation='required' but Linux namespaces are unavailable here "
            f"({detected.unavailable}); refusing to run untrusted code without them"
        )
    with _warn_lock:
        if not _warned:
            _warned = True
            log.warning(
                "SANDBOX RUNS WITHOUT NAMESPACE ISOLATION: Linux namespaces are unavailable (%s). "
                "Untrusted programs get rlimits, a scratch directory and (as root) their own uid, "
                "but NO network, filesystem or PID namespace isolation. Use isolation='required' "
                "to refuse instead.",
                detected.unavailable,
            )
    return detected


def _probe(mode: namespaces.Mode) -> str | None:
    """None if a throwaway interpreter can enter `mode`, else why not."""
    argv = launch.command("bdc_ray.sandbox.namespaces", "probe", json.dumps({"mode": mode, "uid": _PROBE_UID}))
    try:
        done = subprocess.run(argv, env=launch.clean_env(), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"probe could not run: {e}"
    if done.returncode == 0 and done.stdout.strip() == "ok":
        return None
    lines = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}").splitlines()
    return lines[-1]
