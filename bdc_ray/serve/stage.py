"""The Serve stage on a run folder: which artifacts to serve, the Serve config file, starting the application.

Used by `bdc serve` (cli.py) and by the pipeline's optional last step (`serve_stage`), which
always writes `<run>/serve/serve_config.yaml` and deploys only when `serve.deploy_in_pipeline`
is set (a deployed application outlives the pipeline's driver).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bdc_ray import storage
from bdc_ray.serve.config import ServeConfig
from bdc_ray.serve.deploy_config import AppArgs, dump_yaml, http_options, serve_deploy_config

if TYPE_CHECKING:
    from bdc_ray.config import BDCConfig

CONFIG_FILE = "serve_config.yaml"


class ServeSetupError(ValueError):
    """Nothing servable where the config points, or settings that contradict each other."""


def config_path(cfg: BDCConfig) -> str:
    return storage.join(cfg.run_dir, "serve", CONFIG_FILE)


def resolve_app_args(
    cfg: BDCConfig, *, demo: bool = False, hypernet: str | None = None, experts: str | None = None,
    base_model: str | None = None, host: str | None = None, port: int | None = None,
) -> AppArgs:
    """What to serve: explicit arguments, then the `serve:` section, then the run folder's artifacts."""
    from bdc_ray.customize.checkpoint import is_complete
    from bdc_ray.customize.stage import hypernet_dir
    from bdc_ray.disentangle.manifest import experts_dir, manifest_path

    settings = cfg.serve
    bind = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if bind:
        try:
            settings = ServeConfig.model_validate({**settings.model_dump(), **bind})
        except ValidationError as err:
            raise ServeSetupError(f"bad host/port: {err}") from None
    if demo:
        from bdc_ray.serve.demo import build_demo

        built = build_demo(storage.join(cfg.models.build_root, "serve-demo"))
        return AppArgs(hypernet=built.hypernet, experts=built.experts, runs=cfg.storage_path, settings=settings)
    hypernet = hypernet or settings.hypernet or hypernet_dir(cfg.run_dir)
    if not is_complete(hypernet):
        raise ServeSetupError(f"no hypernetwork checkpoint at {hypernet}: run the Customize stage, give its folder, "
                              "or serve the demo solver")
    experts = experts or settings.experts
    if experts is None and storage.exists(manifest_path(experts_dir(cfg.run_dir))):
        experts = experts_dir(cfg.run_dir)
    return AppArgs(hypernet=hypernet, experts=experts, base_model=base_model, runs=cfg.storage_path, settings=settings)


def write_serve_config(cfg: BDCConfig, args: AppArgs, out: str | None = None) -> str:
    """The Serve config YAML for `args` at `out` (default <run>/serve/serve_config.yaml), written atomically."""
    target = out or config_path(cfg)
    storage.write_text_atomic(target, dump_yaml(serve_deploy_config(args, cfg.ray.runtime_env or None)))
    return target


def start_app(args: AppArgs) -> str:
    """serve.start with the settings' HTTP options, then serve.run (returns once replicas are ready); the URL."""
    from ray import serve

    from bdc_ray.serve.app import build_app

    settings = args.settings
    serve.start(http_options=http_options(settings))
    serve.run(build_app(args), name=settings.app_name, route_prefix=settings.route_prefix)
    return f"http://{settings.host}:{settings.port}{settings.route_prefix.rstrip('/')}"


def serve_stage(cfg: BDCConfig, console) -> dict[str, Any]:
    """The pipeline's last step: the run's Serve config, and the application itself when configured so."""
    args = resolve_app_args(cfg)
    path = write_serve_config(cfg, args)
    console.print(f"Serve config: {path}  (serve run {path})")
    url = start_app(args) if args.settings.deploy_in_pipeline else None
    if url:
        console.print(f"serving {args.settings.model_name!r} at {url}")
    return {"serve_config": path, "url": url}
