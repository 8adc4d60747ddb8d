"""Serve as a Ray job: deploys the application on the cluster the job runs on and returns.

    ray job submit --working-dir . -- python jobs/serve.py --config ray_config.yaml

The application stays up after the job ends (Serve applications outlive their driver);
`serve shutdown` or `serve.delete(<app_name>)` takes it down.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bdc_ray.cli.serve import app  # noqa: E402

if __name__ == "__main__":
    app(["run", "--detach", *sys.argv[1:]])
