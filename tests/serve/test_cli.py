"""`bdc serve config` writes a file Ray Serve's own `serve run` deploys; `bdc serve run` starts the same app."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from bdc_ray.problems.synth import format_prompt, format_target
from bdc_ray.cli.serve import app
from tests.serve.conftest import free_port

pytestmark = pytest.mark.ray
runner = CliRunner()


@pytest.fixture
def config_file(tmp_path, models_root) -> Path:
    path = tmp_path / "ray_config.yaml"
    path.write_text(yaml.safe_dump({"storage_path": str(tmp_path / "runs"), "models": {"build_root": str(models_root)}}))
    return path


def _wait_healthy(url: str, timeout_s: float = 240) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url + "/healthz", timeout=5)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} did not become healthy in {timeout_s} s")


def _complete(url: str, problem) -> str:
    body = {"model": "bdc-solver", "prompt": format_prompt(problem), "max_tokens": 120, "temperature": 0}
    return httpx.post(url + "/v1/completions", json=body, timeout=60).json()["choices"][0]["text"]


def test_missing_artifacts_are_named(config_file):
    result = runner.invoke(app, ["config", "--config", str(config_file)])
    assert result.exit_code == 2 and "no hypernetwork checkpoint" in result.output
    bad_port = runner.invoke(app, ["config", "--config", str(config_file), "--demo", "--port", "0"])
    assert bad_port.exit_code == 2 and "port" in bad_port.output


@pytest.mark.slow  # a second driver process and the controller import the whole model stack
def test_serve_run_accepts_the_generated_file(ray_local, demo, config_file, tmp_path):
    import ray
    from ray import serve

    port = free_port()
    out = tmp_path / "serve_config.yaml"
    written = runner.invoke(app, ["config", "--config", str(config_file), "--demo", "--port", str(port), "-o", str(out)])
    assert written.exit_code == 0, written.output
    config = yaml.safe_load(out.read_text())
    assert config["applications"][0]["args"]["hypernet"] == demo.hypernet
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    cli = Path(sys.executable).with_name("serve")
    try:
        subprocess.run([str(cli), "run", str(out), "--non-blocking"], env=env, check=True, timeout=300,
                       capture_output=True)
        url = f"http://127.0.0.1:{port}"
        assert _wait_healthy(url)["experts"] == ["expert_0", "expert_1"]
        assert _complete(url, demo.problems[1]) == format_target(demo.problems[1])
    finally:
        serve.shutdown()


def test_bdc_serve_run_detached(ray_local, demo, config_file):
    from ray import serve

    port = free_port()
    try:
        result = runner.invoke(app, ["run", "--config", str(config_file), "--demo", "--port", str(port), "--detach"])
        assert result.exit_code == 0, result.output
        url = f"http://127.0.0.1:{port}"
        assert f"serving 'bdc-solver' at {url}" in result.output
        _wait_healthy(url)
        assert _complete(url, demo.problems[2]) == format_target(demo.problems[2])
    finally:
        serve.shutdown()
