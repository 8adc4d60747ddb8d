"""`bdc eval` as a Ray job.

    ray job submit --working-dir . -- python jobs/eval.py --problems P.jsonl --samples S.jsonl --out runs/eval
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bdc_ray.cli import app  # noqa: E402

if __name__ == "__main__":
    app(["eval", *sys.argv[1:]])
