"""The `bdc` command line: thin commands that parse options, load the config and call a stage.

main.py holds the app and the small commands (config, data, models, eval, boost, run, report);
disentangle.py, customize.py and serve.py hold those stages' command groups, plan.py `bdc plan`.
"""

from bdc_ray.cli.main import app

__all__ = ["app"]
