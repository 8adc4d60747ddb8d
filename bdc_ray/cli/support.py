"""What every `bdc` sub-command shares: the --config option, one way to refuse (red message,
exit 2) and to load the config, and the console tables are printed on.

Nothing here imports the config schema until a command loads a config: `bdc --help` builds
every command group, and composing the schema imports every stage's section.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Sequence

import typer
from rich.console import Console
from rich.markup import escape

from bdc_ray.console import wide_console

if TYPE_CHECKING:
    from bdc_ray.config import BDCConfig

console = wide_console()
err_console = Console(stderr=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="ray_config.yaml to use (default: the repository's).")
RunNameOpt = typer.Option(None, "--run-name", help="Override run_name.")
OverrideOpt = typer.Option(
    None,
    "--override",
    metavar="FILE",
    help="A YAML file of the same schema merged over --config (repeatable, applied in order; lists are "
    "replaced whole); relative paths in it resolve against --config's folder.",
)


def fail(message: str) -> NoReturn:
    """Messages carry paths and errors ('[Errno 2]', '[/tmp/x]'): escaped, never read as markup."""
    err_console.print(f"[red]{escape(message)}[/red]", markup=True, highlight=False)
    raise typer.Exit(2)


def load_or_exit(
    path: Path | None, overrides: dict[str, Any] | None = None, override_files: Sequence[Path] | None = None
) -> BDCConfig:
    """The validated config (of `path`, else the repository's ray_config.yaml, with `override_files`
    merged over it), or exit 2 with every bad key path listed."""
    from bdc_ray.config import ConfigError, load_config

    try:
        return load_config(path, overrides, override_files or ())
    except ConfigError as err:
        fail(f"config error {err}")
