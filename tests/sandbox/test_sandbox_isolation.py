"""No network, no writes outside scratch, no secrets: from the program's point of view."""

from __future__ import annotations

import os
import socket
import tempfile

import pytest

from bdc_ray.problems.types import StdioTest
from bdc_ray.sandbox import Sandbox
from tests.sandbox.support import LIMITS, run_stdio, src

SECRET = "s3cr3t-6f1d0c2b9a"


@pytest.fixture(autouse=True)
def _needs_namespaces(sandbox):
    if sandbox.isolation.mode == "none":
        pytest.skip("namespaces unavailable on this host")


def test_connecting_to_a_listening_socket_on_host_loopback_fails(sandbox):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        program = f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=1).sendall(b"hi")
                print("connected")
            except OSError as e:
                print("blocked")
            """
        assert run_stdio(sandbox, program, expected="blocked").status == "passed"
        with pytest.raises(BlockingIOError):
            server.accept()


def test_dns_and_outside_addresses_are_unreachable(sandbox):
    program = """
        import socket
        outcomes = []
        try:
            socket.getaddrinfo("example.com", 443)
            outcomes.append("resolved")
        except OSError:
            outcomes.append("no-dns")
        try:
            socket.create_connection(("1.1.1.1", 53), timeout=1)
            outcomes.append("connected")
        except OSError:
            outcomes.append("no-route")
        print(*outcomes)
        """
    assert run_stdio(sandbox, program, expected="no-dns no-route").status == "passed"


def test_writes_outside_scratch_fail(sandbox):
    shared = tempfile.mkdtemp(prefix="bdc-sandbox-test-")
    os.chmod(shared, 0o777)
    try:
        targets = [
            f"{shared}/pwned",
            "/etc/pwned",
            "/usr/pwned",
            "/work/main/pwned",
            "/root/pwned",
            "/var/tmp/pwned",
            "/dev/shm/pwned",
            "/tmp/pwned",
            "/pwned",
        ]
        program = f"""
            import os
            written = []
            for path in {targets!r}:
                try:
                    with open(path, "w") as f:
                        f.write("x")
                    written.append(path)
                except OSError:
                    pass
            with open("inside", "w") as f:
                f.write("scratch is writable")
            print("written:", *written)
            """
        assert run_stdio(sandbox, program, expected="written:").status == "passed"
        assert os.listdir(shared) == []
        assert not any(os.path.exists(t) for t in targets if not t.startswith("/tmp/pwned"))
    finally:
        os.rmdir(shared)


def test_secret_environment_variables_of_the_host_are_not_visible(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with Sandbox(workers=1, limits=LIMITS) as sb:
        program = """
            import os
            print(sorted(os.environ))
            for path in ["/proc/self/environ", "/proc/1/environ"]:
                try:
                    print(open(path, "rb").read())
                except OSError:
                    pass
            """
        result = run_stdio(sb, program, expected="x")
        assert SECRET not in result.first_failure.actual
        assert "['HOME', 'LANG', 'PATH', 'TMPDIR']" in result.first_failure.actual


def test_secret_files_in_the_host_users_home_are_unreadable(sandbox):
    home = tempfile.mkdtemp(prefix="bdc-sandbox-home-", dir=os.path.expanduser("~"))
    host_tmp = tempfile.mkdtemp(prefix="bdc-sandbox-tmp-")
    try:
        secrets = []
        for base in (home, host_tmp):
            os.makedirs(f"{base}/.aws")
            path = f"{base}/.aws/credentials"
            with open(path, "w") as f:
                f.write(SECRET)
            os.chmod(path, 0o600)
            secrets.append(path)
        os.chmod(host_tmp, 0o755)
        os.chmod(f"{host_tmp}/.aws", 0o755)
        program = f"""
            for path in {secrets!r}:
                try:
                    print(open(path).read())
                except OSError as e:
                    print(type(e).__name__)
            """
        result = run_stdio(sandbox, program, expected="FileNotFoundError FileNotFoundError")
        assert result.status == "passed", result.first_failure
    finally:
        for base in (home, host_tmp):
            for path in (f"{base}/.aws/credentials", f"{base}/.aws", base):
                (os.remove if path.endswith("credentials") else os.rmdir)(path)


def test_project_files_and_benchmark_data_are_hidden(sandbox):
    program = """
        import os
        print(os.listdir("/work"), os.listdir("/root"), os.listdir("/home"))
        print(os.path.exists("/work/shared/data/README.md"), os.path.exists("/work/main/bdc_ray"))
        """
    result = run_stdio(sandbox, program, expected="x")
    lines = result.first_failure.actual.splitlines()
    assert lines[1] == "False False"
    assert "shared" not in lines[0]


def test_other_processes_are_invisible(sandbox):
    program = """
        import os
        print(sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
        """
    result = run_stdio(sandbox, program, expected="x")
    visible = eval(result.first_failure.actual)
    assert os.getpid() not in visible and 1 not in visible
    assert len(visible) <= 2


def test_program_runs_unprivileged_in_a_fresh_scratch_directory(sandbox):
    program = """
        import os, tempfile
        here = os.getcwd()
        assert os.environ["HOME"] == os.environ["TMPDIR"] == here
        before = os.listdir(".")
        with open("marker", "w") as f:
            f.write("x")
        tempfile.mkstemp()
        try:
            os.setuid(0)
            print("root!")
        except PermissionError:
            pass
        print(os.getuid() != 0, before)
        """
    tests = [StdioTest(input="", output="True []")] * 2  # the second test must not see the marker
    result = sandbox.run(src(program), tests)
    assert result.status == "passed", result.first_failure


def test_mounts_cannot_be_undone_and_risky_syscalls_are_denied(sandbox):
    program = """
        import ctypes, os, subprocess
        libc = ctypes.CDLL(None, use_errno=True)
        calls = [
            libc.umount2(b"/work", 2),
            libc.unshare(0x10000000),  # CLONE_NEWUSER: denied by seccomp
            libc.unshare(0x00020000),  # CLONE_NEWNS: needs a capability the program lacks
            libc.ptrace(0, 0, 0, 0),  # PTRACE_TRACEME
            libc.syscall(425, 1, 0),  # io_uring_setup
        ]
        fresh_userns = subprocess.run(["unshare", "--user", "--map-root-user", "true"], capture_output=True)
        print(*calls, fresh_userns.returncode != 0, os.path.exists("/work/main/bdc_ray"))
        """
    result = run_stdio(sandbox, program, expected="-1 -1 -1 -1 -1 True False")
    assert result.status == "passed", result.first_failure
