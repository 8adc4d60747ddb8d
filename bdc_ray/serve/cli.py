"""`bdc serve`: write the Serve config YAML, or run the application.

    bdc serve config --config ray_config.yaml          # -> <run>/serve/serve_config.yaml
    serve run <run>/serve/serve_config.yaml           # Ray Serve's own CLI accepts the file
    bdc serve run --config ray_config.yaml             # the same application, started from here
    bdc serve run --demo                               # a tiny solver built on first use

What is served is three artifacts: the hypernetwork folder (default <run>/customize/hypernet),
the experts folder with its manifest.json (default <run>/disentangle/experts) and the base
model the manifest names; each can be given explicitly.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError
from rich.console import Console

from bdc_ray import storage
from bdc_ray.config import DEFAULT_CONFIG, BDCConfig, ConfigError, load_config
from bdc_ray.serve.config import ServeConfig
from bdc_ray.serve.deploy_config import AppArgs, dump_yaml, http_options, serve_deploy_config

app = typer.Typer(help="Serve the customized solver over HTTP (Ray Serve).", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

CONFIG_FILE = "serve_config.yaml"


def _load(path: Path) -> BDCConfig:
    try:
        return load_config(path)
    except ConfigError as err:
        err_console.print(f"[red]config error[/red] {err}")
        raise typer.Exit(2) from None


def serve_settings(cfg: BDCConfig) -> ServeConfig:
    """The config's `serve:` section; a BDCConfig that does not carry one yet means the defaults."""
    return getattr(cfg, "serve", None) or ServeConfig()


def app_args(
    cfg: BDCConfig, *, demo: bool, hypernet: str | None, experts: str | None, base_model: str | None,
    host: str | None = None, port: int | None = None,
) -> AppArgs:
    """Which artifacts to serve: explicit options, then the `serve:` section, then the run folder."""
    settings = serve_settings(cfg)
    bind = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if bind:
        try:
            settings = ServeConfig.model_validate({**settings.model_dump(), **bind})
        except ValidationError as err:
            err_console.print(f"[red]bad --host/--port[/red] {err}")
            raise typer.Exit(2) from None
    if demo:
        from bdc_ray.serve.demo import build_demo

        console.print("building the demo solver (first use only, about 20-40 s)...")
        built = build_demo(storage.join(cfg.models.build_root, "serve-demo"))
        return AppArgs(hypernet=built.hypernet, experts=built.experts, settings=settings)
    hypernet = hypernet or settings.hypernet or storage.join(cfg.run_dir, "customize", "hypernet")
    default_experts = storage.join(cfg.run_dir, "disentangle", "experts")
    experts = experts or settings.experts
    if experts is None and storage.exists(storage.join(default_experts, "manifest.json")):
        experts = default_experts
    from bdc_ray.customize.checkpoint import is_complete

    if not is_complete(hypernet):
        err_console.print(f"[red]no hypernetwork checkpoint at {hypernet}[/red]: run the Customize stage, pass "
                          "--hypernet, or try --demo")
        raise typer.Exit(2)
    return AppArgs(hypernet=hypernet, experts=experts, base_model=base_model, settings=settings)


ConfigOpt = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="ray_config.yaml to use.")
DemoOpt = typer.Option(False, "--demo", help="Serve a tiny solver built on first use instead of the run's artifacts.")
HypernetOpt = typer.Option(None, "--hypernet", help="Hypernetwork folder (default: serve.hypernet or the run's).")
ExpertsOpt = typer.Option(None, "--experts", help="Experts folder with manifest.json (default: serve.experts or the run's).")
BaseOpt = typer.Option(None, "--base-model", help="Base model folder or name (default: the manifest's).")
HostOpt = typer.Option(None, "--host", help="Override serve.host (a non-loopback address turns auth on).")
PortOpt = typer.Option(None, "--port", help="Override serve.port.")


@app.command("config")
def config_cmd(
    config: Path = ConfigOpt,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help=f"Where to write it (default: <run>/serve/{CONFIG_FILE})."),
    demo: bool = DemoOpt,
    hypernet: Optional[str] = HypernetOpt,
    experts: Optional[str] = ExpertsOpt,
    base_model: Optional[str] = BaseOpt,
    host: Optional[str] = HostOpt,
    port: Optional[int] = PortOpt,
) -> None:
    """Write the Serve config YAML that `serve run` and `serve deploy` accept (validated by Ray Serve's schema)."""
    cfg = _load(config)
    args = app_args(cfg, demo=demo, hypernet=hypernet, experts=experts, base_model=base_model, host=host, port=port)
    target = str(out.resolve()) if out else storage.join(cfg.run_dir, "serve", CONFIG_FILE)
    storage.write_text_atomic(target, dump_yaml(serve_deploy_config(args, cfg.ray.runtime_env or None)))
    console.print(f"{target}\nrun it with:  serve run {target}")


@app.command("run")
def run_cmd(
    config: Path = ConfigOpt,
    demo: bool = DemoOpt,
    hypernet: Optional[str] = HypernetOpt,
    experts: Optional[str] = ExpertsOpt,
    base_model: Optional[str] = BaseOpt,
    host: Optional[str] = HostOpt,
    port: Optional[int] = PortOpt,
    blocking: bool = typer.Option(True, "--blocking/--detach", help="Stay until Ctrl-C (then shut Serve down), or "
                                  "leave the application running on the cluster and return."),
) -> None:
    """Start the application on the configured Ray cluster (serve.run with the `serve:` HTTP options)."""
    from ray import serve

    from bdc_ray.ray_session import init_ray
    from bdc_ray.serve.app import build_app

    cfg = _load(config)
    args = app_args(cfg, demo=demo, hypernet=hypernet, experts=experts, base_model=base_model, host=host, port=port)
    settings = args.settings
    init_ray(cfg.ray)
    serve.start(http_options=http_options(settings))
    serve.run(build_app(args), name=settings.app_name, route_prefix=settings.route_prefix)
    url = f"http://{settings.host}:{settings.port}{settings.route_prefix.rstrip('/')}"
    console.print(f"serving {settings.model_name!r} at {url}  (GET {url}/healthz, POST {url}/v1/completions, "
                  f"POST {url}/solve, GET {url}/v1/routing?problem=...)")
    if not blocking:
        return
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        console.print("shutting Serve down")
        serve.shutdown()

