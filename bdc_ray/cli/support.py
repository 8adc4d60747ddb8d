"""What every `bdc` sub-command shares: the --config option, one way to refuse (red message,
exit 2) and to load the config, and the console tables are printed on."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from bdc_ray.config import DEFAULT_CONFIG, BDCConfig, ConfigError, load_config
from bdc_ray.console import wide_console

console = wide_console()
err_console = Console(stderr=True)

ConfigOpt = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="ray_config.yaml to use.")
RunNameOpt = typer.Option(None, "--run-name", help="Override run_name.")


def fail(message: str) -> NoReturn:
    """Messages carry paths and errors ('[Errno 2]', '[/tmp/x]'): escaped, never read as markup."""
    err_console.print(f"[red]{escape(message)}[/red]", markup=True, highlight=False)
    raise typer.Exit(2)


def load_or_exit(path: Path, overrides: dict[str, Any] | None = None) -> BDCConfig:
    """The validated config, or exit 2 with every bad key path listed."""
    try:
        return load_config(path, overrides)
    except ConfigError as err:
        fail(f"config error {err}")
