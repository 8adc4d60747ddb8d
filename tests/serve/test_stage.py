"""Which artifacts a run serves, and the pipeline's serve step (config written, nothing deployed by default)."""

import shutil

import pytest
import yaml
from rich.console import Console

from bdc_ray.config import parse_config
from bdc_ray.serve import ServeSetupError, resolve_app_args, serve_stage


@pytest.fixture
def run_cfg(tmp_path, demo, models_root):
    cfg = parse_config({"storage_path": str(tmp_path / "runs"), "run_name": "r1",
                        "models": {"build_root": str(models_root)},
                        "serve": {"model_name": "my-solver", "port": 9100, "limits": {"max_n": 4}}})
    run = tmp_path / "runs" / "r1"
    shutil.copytree(demo.hypernet, run / "customize" / "hypernet")
    shutil.copytree(demo.experts, run / "disentangle" / "experts")
    return cfg


def test_the_run_folder_artifacts_are_served_by_default(run_cfg):
    args = resolve_app_args(run_cfg.layout, run_cfg.serve)
    assert args.hypernet == f"{run_cfg.run_dir}/customize/hypernet"
    assert args.experts == f"{run_cfg.run_dir}/disentangle/experts"
    assert args.settings == run_cfg.serve
    assert args.runs == run_cfg.storage_path  # /runs/<run>/ serves the run folders' reports
    assert (args.settings.model_name, args.settings.port, args.settings.limits.max_n) == ("my-solver", 9100, 4)
    explicit = resolve_app_args(run_cfg.layout, run_cfg.serve, experts="/elsewhere", base_model="/base", host="0.0.0.0",
                                port=9000)
    assert (explicit.experts, explicit.base_model, explicit.settings.port) == ("/elsewhere", "/base", 9000)
    assert explicit.settings.auth_required and explicit.settings.model_name == "my-solver"


def test_missing_checkpoint_and_bad_port_are_setup_errors(tmp_path, demo):
    cfg = parse_config({"storage_path": str(tmp_path)})
    with pytest.raises(ServeSetupError, match="no hypernetwork checkpoint"):
        resolve_app_args(cfg.layout, cfg.serve)
    with pytest.raises(ServeSetupError, match="port"):
        resolve_app_args(cfg.layout, cfg.serve, hypernet=demo.hypernet, port=70000)
    assert resolve_app_args(cfg.layout, cfg.serve, hypernet=demo.hypernet).experts is None  # the checkpoint's recorded paths


def test_pipeline_step_writes_the_config_and_deploys_nothing(run_cfg):
    result = serve_stage(run_cfg.layout, run_cfg.serve, run_cfg.ray.runtime_env, Console(quiet=True))
    assert result["url"] is None and result["serve_config"] == f"{run_cfg.run_dir}/serve/serve_config.yaml"
    (app,) = yaml.safe_load(open(result["serve_config"]))["applications"]
    assert app["args"]["hypernet"] == f"{run_cfg.run_dir}/customize/hypernet"
