"""The Serve stage on a run folder: which artifacts to serve, the Serve config file, starting the application.

Used by `bdc serve` and by the pipeline's last step (`serve_stage`), which always writes
`<run>/serve/serve_config.yaml` and deploys only when `serve.deploy_in_pipeline` is set (a
deployed application outlives the pipeline's driver).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from bdc_ray import storage
from bdc_ray.artifacts.experts import manifest_path
from bdc_ray.artifacts.hypernet import hypernet_identity
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.serve.config import ServeConfig
from bdc_ray.serve.deploy_config import AppArgs, dump_yaml, http_options, serve_deploy_config


class ServeSetupError(ValueError):
    """Nothing servable where the config points, or settings that contradict each other."""


def bind(settings: ServeConfig, host: str | None = None, port: int | None = None) -> ServeConfig:
    """The `serve:` section with another bind address or port, validated like the file."""
    changes = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if not changes:
        return settings
    try:
        return ServeConfig.model_validate({**settings.model_dump(), **changes})
    except ValidationError as err:
        raise ServeSetupError(f"bad host/port: {err}") from None


def resolve_app_args(
    layout: RunLayout, settings: ServeConfig, *, hypernet: str | None = None, experts: str | None = None,
    base_model: str | None = None, host: str | None = None, port: int | None = None,
) -> AppArgs:
    """What to serve: explicit arguments, then the `serve:` section, then the run folder's artifacts."""
    settings = bind(settings, host, port)
    hypernet = hypernet or settings.hypernet or layout.hypernet_dir
    if not hypernet_identity(hypernet).complete:
        raise ServeSetupError(f"no hypernetwork checkpoint at {hypernet}: run the Customize stage, give its folder, "
                              "or serve the demo solver")
    experts = experts or settings.experts
    if experts is None and storage.exists(manifest_path(layout.experts_dir)):
        experts = layout.experts_dir
    return AppArgs(hypernet=hypernet, experts=experts, base_model=base_model, runs=layout.runs_root, settings=settings)


def write_serve_config(args: AppArgs, path: str, runtime_env: dict[str, Any] | None = None) -> str:
    """The Serve config YAML for `args` at `path`, written atomically; returns `path`."""
    storage.write_text_atomic(path, dump_yaml(serve_deploy_config(args, runtime_env or None)))
    return path


def start_app(args: AppArgs) -> str:
    """serve.start with the settings' HTTP options, then serve.run (returns once replicas are ready); the URL."""
    from ray import serve

    from bdc_ray.serve.app import build_app

    settings = args.settings
    serve.start(http_options=http_options(settings))
    serve.run(build_app(args), name=settings.app_name, route_prefix=settings.route_prefix)
    return f"http://{settings.host}:{settings.port}{settings.route_prefix.rstrip('/')}"


def serve_stage(layout: RunLayout, settings: ServeConfig, runtime_env: dict[str, Any], console) -> dict[str, Any]:
    """The pipeline's last step: the run's Serve config, and the application itself when configured so."""
    args = resolve_app_args(layout, settings)
    path = write_serve_config(args, layout.serve_config, runtime_env)
    console.print(f"Serve config: {path}  (serve run {path})")
    url = start_app(args) if args.settings.deploy_in_pipeline else None
    if url:
        console.print(f"serving {args.settings.model_name!r} at {url}")
    return {"serve_config": path, "url": url}
