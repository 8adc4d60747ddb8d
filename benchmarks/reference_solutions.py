"""`bdc eval --reference` over the public benchmark copies in ../shared/data.

Every dataset's own reference solutions run through the sandbox pool on a local Ray cluster.
Expected: HumanEval 164/164 and sanitized MBPP 427/427; for APPS the count passing and every
failure category (wrong answer, crash, timeout, ...) with the problems behind each.

    .venv/bin/python benchmarks/reference_solutions.py --data ../shared/data --out runs/reference
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bdc_ray.config import load_config  # noqa: E402
from bdc_ray.eval.evaluate import FAILURE_LABELS, reference_samples  # noqa: E402
from bdc_ray.eval.runner import evaluate_dataset  # noqa: E402
from bdc_ray.sandbox.ray_pool import make_pool  # noqa: E402
from bdc_ray.console import wide_console  # noqa: E402
from bdc_ray.eval.tables import summary_markdown, summary_table, with_groups  # noqa: E402
from bdc_ray.problems.loaders import load_problems  # noqa: E402
from bdc_ray.ray_session import init_ray  # noqa: E402

DATASETS = [
    ("humaneval", "humaneval/HumanEval.jsonl.gz"),
    ("mbpp-sanitized", "mbpp/sanitized-mbpp.json"),
    ("apps-introductory50", "apps/codechain_introductory50.jsonl"),
    ("apps-train5", "apps/coderl_apps_train5.jsonl"),
    ("apps-test4", "apps/appseval_apps_test4.jsonl"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "reference"))
    parser.add_argument("--time-s", type=float, default=20.0, help="Per-test limit (MBPP task 123 needs ~8 s).")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    console = wide_console()
    cfg = load_config(
        overrides={
            "sandbox": {"workers_per_actor": args.workers, "limits": {"time_s": args.time_s, "program_time_s": 600}},
        }
    )
    init_ray(cfg.ray)
    pool = make_pool(cfg.sandbox, cfg.resources.sandbox.ray_options())
    rows, failures = [], defaultdict(list)
    try:
        for name, rel in DATASETS:
            path = Path(args.data) / rel
            if not path.exists():
                console.print(f"[yellow]{path} missing: skipped[/yellow]")
                continue
            problems, _ = load_problems(str(path))
            samples, missing = reference_samples(problems)
            if missing:
                console.print(f"{name}: {len(missing)} problem(s) without a reference solution")
            outcome = evaluate_dataset(pool, name, problems, samples, [1], out_dir=f"{args.out}/{name}")
            rows += with_groups(outcome.summary, "difficulty") if name.startswith("apps") else [outcome.summary]
            for r in outcome.records:
                if r["status"] != "passed":
                    failures[name].append(r)
    finally:
        pool.shutdown()

    console.print(summary_table(rows, title="Reference solutions through the bdc sandbox"))
    for name, recs in failures.items():
        console.print(f"[bold]{name}[/bold]: {len(recs)} reference solution(s) not passing")
        for r in recs:
            ff = r.get("first_failure") or {}
            detail = (ff.get("error") or "").strip().splitlines()[-1:] or [f"expected {str(ff.get('expected'))[:60]!r}, got {str(ff.get('actual'))[:60]!r}"]
            console.print(f"  {r['task_id']}: {FAILURE_LABELS.get(r['status'], r['status'])} ({r['passed']}/{r['total']} tests) {detail[0][:160]}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "table.md").write_text(summary_markdown(rows))
    console.print(f"markdown table: {Path(args.out) / 'table.md'}")


if __name__ == "__main__":
    main()
