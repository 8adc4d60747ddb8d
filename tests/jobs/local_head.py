"""A real Ray head started with `ray start --head` for one test, and stopped without `ray stop`.

`ray stop` kills every Ray process on the machine, including clusters that other people and
other test sessions run on it. This head runs `ray start --block` in its own session and
process group with its own temp dir and ports, and is stopped by signalling that one process
(it tears down the processes it started), then by its pids: its process group, and any process
whose command line or working folder is inside this head's temp dir (workers, job drivers).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.conftest import ROOT

VENV_BIN = Path(sys.executable).parent
RAY = str(VENV_BIN / "ray")


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on loopback right now (all held open until all are picked)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def head_env() -> dict[str, str]:
    """The CLI's environment: this venv first on PATH (job drivers run `python` from it), no auth."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        RAY_AUTH_MODE="disabled",  # a loopback-only test cluster; production keeps token auth on
        RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",  # nothing to drain: stop at once
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS="1",
    )
    return env


@dataclass
class LocalHead:
    """One `ray start --head --block` process; use as a context manager."""

    num_cpus: int = 2
    startup_timeout_s: float = 180.0
    temp_dir: str = field(init=False)
    gcs_port: int = field(init=False)
    dashboard_port: int = field(init=False)
    metrics_port: int = field(init=False)
    log_file: Path = field(init=False)
    _agent_ports: list[int] = field(init=False, default_factory=list)
    proc: subprocess.Popen | None = field(init=False, default=None)

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    def __enter__(self) -> LocalHead:
        # Unix socket paths under the temp dir must stay below ~107 bytes: keep it short.
        self.temp_dir = tempfile.mkdtemp(prefix="bdcj-", dir="/tmp")
        (self.gcs_port, self.dashboard_port, self.metrics_port, *self._agent_ports) = free_ports(9)
        self.log_file = Path(self.temp_dir) / "ray-start.log"
        cmd = self.command()
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, env=self.env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def command(self) -> list[str]:
        """`ray start` of this head (a subclass adds options, tests/cluster/autoscaling.py)."""
        agent_listen, agent_grpc, runtime_env_agent, client_server, node_manager, object_manager = self._agent_ports
        return [
            RAY, "start", "--head", "--block",
            "--node-ip-address", "127.0.0.1",
            "--port", str(self.gcs_port),
            "--temp-dir", self.temp_dir,
            "--num-cpus", str(self.num_cpus),
            "--include-dashboard", "true",
            "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(self.dashboard_port),
            "--dashboard-agent-listen-port", str(agent_listen),
            "--dashboard-agent-grpc-port", str(agent_grpc),
            "--runtime-env-agent-port", str(runtime_env_agent),
            "--ray-client-server-port", str(client_server),
            "--node-manager-port", str(node_manager),
            "--object-manager-port", str(object_manager),
            "--metrics-export-port", str(self.metrics_port),
            "--disable-usage-stats",
        ]

    def env(self) -> dict[str, str]:
        """The environment of `ray start` and of every process it starts."""
        return head_env()

    def _wait_ready(self) -> None:
        """The job API answers once the dashboard and the head's job agent are up."""
        deadline = time.time() + self.startup_timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.proc.returncode}:\n{self.start_log()}")
            try:
                with urllib.request.urlopen(f"{self.dashboard_url}/api/jobs/", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(1)
        raise TimeoutError(f"Ray head not ready after {self.startup_timeout_s:.0f} s:\n{self.start_log()}")

    def start_log(self) -> str:
        return self.log_file.read_text(errors="replace")[-4000:]

    def job(self, command: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        """Run `ray job <command> --address <this dashboard> <args>` (plain, uncoloured output)."""
        return subprocess.run(
            [RAY, "job", command, "--address", self.dashboard_url, "--log-color", "false", *args],
            env=head_env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        )

    def own_processes(self) -> list[psutil.Process]:
        """Live processes started for this head: found by its temp dir in their command line or cwd."""
        found = []
        for p in psutil.process_iter(["pid", "cmdline", "cwd"]):
            try:
                cmdline = " ".join(p.info["cmdline"] or [])
                cwd = p.info["cwd"] or ""
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if p.pid != os.getpid() and (self.temp_dir in cmdline or cwd.startswith(self.temp_dir)):
                found.append(p)
        return found

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        leftovers = self.own_processes()
        for p in leftovers:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(leftovers, timeout=10)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
