"""`python -m bdc_ray.cli ...`: the same app as the `bdc` script."""

from bdc_ray.cli.main import app

app()
