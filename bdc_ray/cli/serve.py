"""`bdc serve config | run`: write the Serve config YAML, or run the application.

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
from typing import TYPE_CHECKING, Optional

import typer

from bdc_ray.cli.support import ConfigOpt, console, fail, load_or_exit

if TYPE_CHECKING:
    from bdc_ray.config import BDCConfig
    from bdc_ray.serve import AppArgs

app = typer.Typer(help="Serve the customized solver over HTTP (Ray Serve).", no_args_is_help=True)

DemoOpt = typer.Option(False, "--demo", help="Serve a tiny solver built on first use instead of the run's artifacts.")
HypernetOpt = typer.Option(None, "--hypernet", help="Hypernetwork folder (default: serve.hypernet or the run's).")
ExpertsOpt = typer.Option(None, "--experts", help="Experts folder with manifest.json (default: serve.experts or the run's).")
BaseOpt = typer.Option(None, "--base-model", help="Base model folder or name (default: the manifest's).")
HostOpt = typer.Option(None, "--host", help="Override serve.host (a non-loopback address turns auth on).")
PortOpt = typer.Option(None, "--port", help="Override serve.port.")


def _setup(config: Path | None, demo: bool, **options) -> tuple[BDCConfig, AppArgs]:
    from bdc_ray import storage
    from bdc_ray.serve import AppArgs, ServeSetupError, bind, resolve_app_args

    cfg = load_or_exit(config)
    try:
        if not demo:
            return cfg, resolve_app_args(cfg.layout, cfg.serve, **options)
        settings = bind(cfg.serve, options["host"], options["port"])
        console.print("the demo solver: built on first use (about 20-40 s), then reused")
        from bdc_ray.demo import build_demo

        built = build_demo(storage.join(cfg.models.build_root, "serve-demo"))
        return cfg, AppArgs(hypernet=built.hypernet, experts=built.experts, runs=cfg.storage_path, settings=settings)
    except ServeSetupError as err:
        fail(f"cannot serve {err}")


@app.command("config")
def config_cmd(
    config: Optional[Path] = ConfigOpt,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write it (default: <run>/serve/serve_config.yaml)."),
    demo: bool = DemoOpt,
    hypernet: Optional[str] = HypernetOpt,
    experts: Optional[str] = ExpertsOpt,
    base_model: Optional[str] = BaseOpt,
    host: Optional[str] = HostOpt,
    port: Optional[int] = PortOpt,
) -> None:
    """Write the Serve config YAML that `serve run` and `serve deploy` accept (validated by Ray Serve's schema)."""
    from bdc_ray.serve import write_serve_config

    cfg, args = _setup(config, demo, hypernet=hypernet, experts=experts, base_model=base_model, host=host, port=port)
    target = write_serve_config(args, str(out.resolve()) if out else cfg.layout.serve_config, cfg.ray.runtime_env)
    console.print(f"{target}\nrun it with:  serve run {target}")


@app.command("run")
def run_cmd(
    config: Optional[Path] = ConfigOpt,
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
    from bdc_ray.serve import start_app

    cfg, args = _setup(config, demo, hypernet=hypernet, experts=experts, base_model=base_model, host=host, port=port)
    init_ray(cfg.ray)
    url = start_app(args)
    console.print(f"serving {args.settings.model_name!r} at {url}  (GET {url}/healthz, POST {url}/v1/completions, "
                  f"POST {url}/v1/chat/completions, POST {url}/solve, GET {url}/v1/routing?problem=...)")
    if not blocking:
        return
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        console.print("shutting Serve down")
        serve.shutdown()
