"""The whole pipeline as a Ray job.

    ray job submit --working-dir . -- python jobs/pipeline.py --config ray_config.yaml

A thin entry point: the job's driver joins the cluster it was submitted to (RAY_ADDRESS) and
runs `bdc run` with the given arguments.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bdc_ray.cli import app  # noqa: E402

if __name__ == "__main__":
    app(["run", *sys.argv[1:]])
