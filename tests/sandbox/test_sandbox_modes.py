"""Isolation policy ('auto' / 'required' / 'off') and the unprivileged user-namespace mode."""

from __future__ import annotations

import logging
import os

import pytest

from bdc_ray.sandbox import Sandbox, SandboxIsolationError, isolation
from bdc_ray.sandbox.isolation import IsolationInfo
from tests.sandbox.support import LIMITS, processes_of, run_stdio

UNAVAILABLE = IsolationInfo("none", unavailable="namespaces: unshare: Operation not permitted")


@pytest.fixture
def no_namespaces(monkeypatch):
    monkeypatch.setattr(isolation, "detect", lambda: UNAVAILABLE)
    monkeypatch.setattr(isolation, "_warned", False)


def test_detection_finds_namespaces_here():
    if os.geteuid() != 0:
        pytest.skip("this host check assumes root")
    assert isolation.detect().mode == "namespaces"


def test_required_isolation_refuses_to_start_without_namespaces(no_namespaces):
    with pytest.raises(SandboxIsolationError, match="unshare: Operation not permitted"):
        Sandbox(workers=1, limits=LIMITS.model_copy(update={"isolation": "required"}))


def test_auto_falls_back_with_exactly_one_loud_warning(no_namespaces, caplog):
    with caplog.at_level(logging.WARNING, logger="bdc_ray.sandbox.isolation"):
        for _ in range(2):
            with Sandbox(workers=1, limits=LIMITS) as sb:
                assert sb.isolation.mode == "none" and sb.isolation.unavailable
                assert run_stdio(sb, "print(1)", expected="1").status == "passed"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "WITHOUT NAMESPACE ISOLATION" in warnings[0].getMessage()


def test_off_disables_namespaces_but_keeps_limits_and_uid(caplog):
    with caplog.at_level(logging.WARNING):
        with Sandbox(workers=1, limits=LIMITS.model_copy(update={"isolation": "off"})) as sb:
            assert sb.isolation.mode == "none"
            program = "import os\nprint(os.getuid() != 0, os.getcwd() == os.environ['HOME'])"
            assert run_stdio(sb, program, expected="True True").status == "passed"
            assert run_stdio(sb, "while True:\n    pass\n", expected="").status == "timeout"
            with pytest.raises(SandboxIsolationError):
                sb.run("print(1)", [], limits=LIMITS.model_copy(update={"isolation": "required"}))
    assert not caplog.records  # 'off' is a choice, not a fallback


def test_user_namespace_mode_isolates_an_unprivileged_worker(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("as root the worker drops to a sandbox uid first; as non-root, 'auto' covers it")
    monkeypatch.setattr(isolation, "detect", lambda: IsolationInfo("userns"))
    with Sandbox(workers=1, limits=LIMITS) as sb:
        uids = sb.sandbox_uids
        assert sb.isolation.mode == "userns"
        assert run_stdio(sb, "print(sum(map(int, input().split())))", stdin="2 3", expected="5").status == "passed"
        # Only preloaded modules: as a uid that cannot read root's pyenv, the stdlib is hidden.
        program = """
            import ctypes, os, struct
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.socket(2, 1, 0)
            address = struct.pack("<H", 2) + struct.pack("!H", 22) + bytes([127, 0, 0, 1]) + bytes(8)
            connected = libc.connect(fd, address, 16) == 0
            print(connected, os.path.exists("/work/main/bdc_ray"), libc.umount2(b"/work", 2), libc.unshare(0x20000))
            """
        assert run_stdio(sb, program, expected="False False -1 -1").status == "passed"
        assert run_stdio(sb, "import os\nwhile True:\n    os.fork()\n", expected="").status in {"error", "timeout"}
        assert run_stdio(sb, "print(7)", expected="7").status == "passed"
    assert processes_of(uids) == []
