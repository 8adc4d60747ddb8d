"""The generated Serve config: accepted by Ray Serve's own schema, and its import path builds the application."""

import pytest
import yaml
from ray.serve import Application
from ray.serve.schema import ServeDeploySchema

from bdc_ray.serve.config import ServeConfig
from bdc_ray.serve.deploy_config import IMPORT_PATH, AppArgs, dump_yaml, serve_deploy_config


def _args(**settings) -> AppArgs:
    return AppArgs(hypernet="/artifacts/hypernet", experts="/artifacts/experts", settings=ServeConfig(**settings))


def test_config_is_a_valid_serve_deploy_schema():
    config = serve_deploy_config(
        _args(host="0.0.0.0", port=8123, route_prefix="/bdc", resources={"num_cpus": 2, "num_gpus": 0.5},
              autoscaling={"min_replicas": 2, "max_replicas": 6, "target_ongoing_requests": 3}),
        runtime_env={"working_dir": "s3://bucket/code.zip"},
    )
    schema = ServeDeploySchema.model_validate(yaml.safe_load(dump_yaml(config)))
    assert schema.http_options.host == "0.0.0.0" and schema.http_options.port == 8123
    (app,) = schema.applications
    assert app.import_path == IMPORT_PATH == "bdc_ray.serve.app:build_app"
    assert app.route_prefix == "/bdc" and app.runtime_env == {"working_dir": "s3://bucket/code.zip"}
    (deployment,) = app.deployments
    assert deployment.name == "BDCSolver"
    assert deployment.ray_actor_options.num_cpus == 2.0 and deployment.ray_actor_options.num_gpus == 0.5
    assert deployment.autoscaling_config["min_replicas"] == 2 and deployment.autoscaling_config["max_replicas"] == 6
    assert deployment.max_ongoing_requests == 32
    assert AppArgs.model_validate(app.args).settings.port == 8123


def test_the_file_holds_no_key_and_says_how_to_run_it(monkeypatch):
    monkeypatch.setenv("BDC_SERVE_API_KEY", "secret-value-0123456789")
    text = dump_yaml(serve_deploy_config(_args(host="0.0.0.0")))
    assert "secret-value" not in text and "serve run" in text and "api_key_env: BDC_SERVE_API_KEY" in text


def test_import_path_builds_the_application_and_rejects_bad_args():
    from ray._common.utils import import_attr

    build_app = import_attr(IMPORT_PATH)
    app = build_app(serve_deploy_config(_args())["applications"][0]["args"])
    assert isinstance(app, Application)
    with pytest.raises(ValueError, match="settings.port"):
        build_app({"hypernet": "/h", "settings": {"port": 0}})
    with pytest.raises(ValueError, match="hypernet: Field required"):
        build_app({"settings": {}})
