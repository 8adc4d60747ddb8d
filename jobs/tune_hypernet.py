"""Customize (Ray Tune over the hypernetwork) as a Ray job.

    ray job submit --working-dir . -- python jobs/tune_hypernet.py --config ray_config.yaml
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bdc_ray.cli.customize import app  # noqa: E402

if __name__ == "__main__":
    app(["tune", *sys.argv[1:]])
