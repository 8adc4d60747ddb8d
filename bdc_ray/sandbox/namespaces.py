"""Put a worker process into its own network, mount, IPC and UTS namespaces.

A worker enters its namespaces once at start-up; every untrusted child it forks inherits them
for free, which is what keeps per-test isolation cheap. Inside the private mount namespace the
places where secrets, project data (hidden test outputs!) and other users' files live are
covered by empty read-only tmpfs mounts, `/` is remounted read-only, and only the Python
runtime directories are bound back (read-only) so that lazily imported modules still load. The
worker's own fresh tmpfs on /tmp is the only writable place; scratch directories live there
and vanish with the namespace when the worker exits.
"""

from __future__ import annotations

import json
import os
import signal
import sysconfig
from dataclasses import dataclass
from typing import Literal

from bdc_ray.sandbox import linux

Mode = Literal["namespaces", "userns", "none"]
"""`namespaces` (host root: namespaces plus a distinct uid per worker), `userns` (an
unprivileged user namespace), or `none` (rlimits, uid and scratch directory only)."""

HIDDEN_DIRS = ("/tmp", "/var", "/root", "/home", "/work", "/run", "/mnt", "/media", "/srv", "/dev/shm", "/sys")
SCRATCH_ROOT = "/tmp"
# Scratch space is RAM that no rlimit of the child accounts for, so it gets its own bound.
SCRATCH_TMPFS_OPTIONS = "mode=0711,size=64m,nr_inodes=16384"
_EMPTY_TMPFS_OPTIONS = "mode=0755,size=64k,nr_inodes=256"
_NAMESPACES = linux.CLONE_NEWNS | linux.CLONE_NEWNET | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS
_RO = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV


@dataclass(frozen=True)
class Confinement:
    """What a worker actually achieved, reported back to the pool."""

    mode: Mode
    mechanisms: tuple[str, ...]


def runtime_dirs() -> list[str]:
    """Directories the interpreter may still import from after the hiding mounts."""
    paths = sysconfig.get_paths()
    dirs = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    return sorted(d for d in dirs if os.path.isdir(d) and not any(_inside(d, o) for o in dirs if o != d))


def enter(mode: Mode, uid: int, gid: int, extra_hidden: list[str]) -> tuple[Confinement, int]:
    """Enter the namespaces of `mode` (`namespaces` or `userns`) and build the private view.

    Returns what was achieved and an fd of the PID namespace the worker lives in, to which it
    returns after creating each test's PID namespace. In `userns` mode a root caller first
    becomes `uid` for good, so the worker is genuinely unprivileged on the host.
    """
    runtime = runtime_dirs()  # while sysconfig can still import its data as the caller
    if mode == "userns":
        outer_uid = _enter_user_namespace(uid, gid)
    else:
        linux.unshare(_NAMESPACES)
    pid_ns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    hidden = _outermost([d for d in (*HIDDEN_DIRS, *extra_hidden) if os.path.isdir(d) and not os.path.islink(d)])
    kept, unreachable = _open_runtime_dirs(runtime, hidden)
    for d in hidden:
        options = SCRATCH_TMPFS_OPTIONS if d == SCRATCH_ROOT else _EMPTY_TMPFS_OPTIONS
        linux.mount("tmpfs", d, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, options)
    for path, fd in kept.items():
        os.makedirs(path, exist_ok=True)
        linux.mount(f"/proc/self/fd/{fd}", path, None, linux.MS_BIND)
        linux.mount(None, path, None, _RO)
        os.close(fd)
    if mode == "userns":
        # A user namespace may not mount a proc for the host's PID namespace: hide it instead.
        linux.mount("tmpfs", "/proc", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, _EMPTY_TMPFS_OPTIONS)
        linux.mount(None, "/proc", None, _RO)
        proc = "/proc hidden"
    else:
        linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, "hidepid=invisible")
        proc = "/proc remounted with hidepid=invisible (other uids' processes invisible)"
    for d in hidden:
        if d != SCRATCH_ROOT:
            linux.mount(None, d, None, _RO)
    linux.mount(None, "/", None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)
    mechanisms = [
        "network namespace (no interfaces up: no network, no host loopback, no abstract unix sockets)",
        "mount namespace: / read-only; empty read-only tmpfs over " + ", ".join(d for d in hidden if d != SCRATCH_ROOT),
        f"private tmpfs {SCRATCH_ROOT} ({SCRATCH_TMPFS_OPTIONS}) holding per-test scratch directories",
        "runtime dirs re-exposed read-only: " + (", ".join(kept) or "none"),
        proc,
        "IPC and UTS namespaces",
    ]
    if unreachable:
        mechanisms.append("runtime dirs not reachable, lazy imports from them fail: " + ", ".join(unreachable))
    if mode == "userns":
        mechanisms.append(f"user namespace: sandbox uid 0 is host uid {outer_uid}, capabilities dropped per test")
    mechanisms.append("PID namespace per test (the program is PID 1: its exit kills all it spawned)")
    return Confinement(mode, tuple(mechanisms)), pid_ns_fd


def _enter_user_namespace(uid: int, gid: int) -> int:
    """Unshare everything including the user namespace; return the host uid we map to 0."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        # Changing uid made us non-dumpable, which would leave /proc/self owned by root.
        linux.prctl(linux.PR_SET_DUMPABLE, 1)
    outer_uid, outer_gid = os.getuid(), os.getgid()
    linux.unshare(_NAMESPACES | linux.CLONE_NEWUSER | linux.CLONE_NEWPID)
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {outer_uid} 1"), ("gid_map", f"0 {outer_gid} 1")):
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    _continue_as_pid_namespace_init()
    return outer_uid


def _continue_as_pid_namespace_init() -> None:
    """Fork; the child, PID 1 of the PID namespace just unshared, carries on as the worker.

    A user namespace may only return (setns) to a PID namespace it owns, so the worker must
    live in one of its own; the original process stays behind only to exit with the worker.
    """
    pid = os.fork()
    if pid == 0:
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        return
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _open_runtime_dirs(runtime: list[str], hidden: list[str]) -> tuple[dict[str, int], list[str]]:
    """O_PATH handles, taken inside the new mount namespace, to runtime dirs about to be hidden.

    The handles must be taken after unsharing: a bind mount only accepts a source from the
    caller's own mount namespace.
    """
    kept: dict[str, int] = {}
    unreachable: list[str] = []
    for d in runtime:
        if any(_inside(d, h) for h in hidden):
            try:
                kept[d] = os.open(d, os.O_PATH | os.O_DIRECTORY)
            except OSError:
                unreachable.append(d)
    return kept, unreachable


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _outermost(dirs: list[str]) -> list[str]:
    real = sorted({os.path.realpath(d) for d in dirs})
    return [d for d in real if not any(o != d and _inside(d, o) for o in real)]


def probe(config_json: str) -> None:
    """Entry point of the isolation probe: enter the mode, fork into a fresh PID namespace as a
    worker would, print `ok`. Any failure is the probe's answer (traceback, exit status)."""
    config = json.loads(config_json)
    _, pid_ns_fd = enter(config["mode"], config["uid"], config["uid"], [])
    linux.unshare(linux.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if os.getpid() == 1 else 1)
    linux.setns(pid_ns_fd, linux.CLONE_NEWPID)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError("a child forked after unshare(CLONE_NEWPID) is not PID 1")
    print("ok", flush=True)
