"""Host-wide leases of sandbox uids, one per worker.

Each worker's untrusted children run under their own uid so that RLIMIT_NPROC counts only
that worker's processes and a `kill(-1)` sweep as that uid can only hit them. Several pools
(Ray actors, tests) may run on one host at once, so a uid is taken under an flock that the
kernel releases when the holder exits, however it exits.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess

UID_BASE = 1_800_000_000
UID_SPAN = 100_000
LOCK_DIR = "/run/bdc-sandbox-uids"


class UidLease:
    """Exclusive use of one uid (and the gid of the same number) until `release`."""

    def __init__(self) -> None:
        os.makedirs(LOCK_DIR, mode=0o700, exist_ok=True)
        for uid in range(UID_BASE, UID_BASE + UID_SPAN):
            fd = os.open(os.path.join(LOCK_DIR, str(uid)), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid = self.gid = uid
            self._fd: int | None = fd
            kill_all_processes_of(uid)  # a previous holder that crashed may have left some
            return
        raise RuntimeError(f"all {UID_SPAN} sandbox uids from {UID_BASE} are in use")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def kill_all_processes_of(uid: int) -> None:
    """SIGKILL every process of `uid`: `kill -9 -1` run as that uid reaches exactly those."""
    kill = shutil.which("kill", path="/usr/bin:/bin")
    if kill is not None:
        subprocess.run([kill, "-9", "-1"], user=uid, group=uid, extra_groups=[], env={}, capture_output=True)
