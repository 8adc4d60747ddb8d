"""Disentangle's experts as a Ray job: one LoRA expert per cluster plus the all-data baseline.

    ray job submit --working-dir . -- python jobs/train_experts.py --config ray_config.yaml

A thin entry point: the job's driver joins the cluster it was submitted to (RAY_ADDRESS) and
runs `bdc disentangle train` with the given arguments.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bdc_ray.cli.disentangle import app  # noqa: E402

if __name__ == "__main__":
    app(["train", *sys.argv[1:]])
