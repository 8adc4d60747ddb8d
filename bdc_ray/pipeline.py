"""`bdc run`: everything the pipeline can do so far, end to end, on one config.

Today that is: generate the synthetic suite into the run folder, verify it together with the
configured public benchmark files by running their reference solutions through the sandbox pool
on Ray, then Boost (tiny agents built on first use) over the training problems. Later stages
(disentangle, customize, serve) plug in after Boost.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rich.console import Console

from bdc_ray import storage
from bdc_ray.config import BDCConfig, dump_config
from bdc_ray.eval.evaluate import reference_samples
from bdc_ray.eval.runner import evaluate_dataset, make_pool
from bdc_ray.boost.stage import run_boost_stage
from bdc_ray.boost.tables import boost_table
from bdc_ray.eval.tables import summary_markdown, summary_table, with_groups
from bdc_ray.problems.loaders import load_problems
from bdc_ray.problems.suite_files import write_suite
from bdc_ray.ray_session import init_ray

log = logging.getLogger(__name__)


def run_pipeline(cfg: BDCConfig, console: Console | None = None) -> dict[str, Any]:
    """Run every implemented stage; returns {"reference": table rows, "boost": Boost summary}."""
    console = console or Console()
    storage.makedirs(cfg.run_dir)
    storage.write_text_atomic(storage.join(cfg.run_dir, "config.yaml"), dump_config(cfg))
    init_ray(cfg.ray)
    splits = write_suite(cfg.data.synthetic, storage.join(cfg.run_dir, "data"))
    console.print(
        f"synthetic suite: {', '.join(f'{k} {len(v)}' for k, v in splits.items())} problems -> {cfg.run_dir}/data"
    )
    rows = verify_references(cfg, splits, console)
    started = time.time()
    boost = run_boost_stage(cfg)
    console.print(boost_table(boost, title=f"Boost: MC-Tree-of-Agents on training problems ({time.time() - started:.0f} s)"))
    return {"reference": rows, "boost": boost}


def verify_references(cfg: BDCConfig, splits: dict[str, list], console: Console) -> list[dict[str, Any]]:
    """Every reference solution of the suite and of the configured datasets, through the sandbox."""
    started = time.time()
    pool = make_pool(cfg)
    ks = cfg.stages.eval.k
    rows: list[dict[str, Any]] = []
    try:
        for name, problems in splits.items():
            samples, _ = reference_samples(problems)
            outcome = evaluate_dataset(
                pool, f"synthetic/{name}", problems, samples, ks,
                tests=cfg.stages.eval.tests,
                out_dir=storage.join(cfg.run_dir, "eval", "reference", f"synthetic_{name}"),
                group_by="family",
            )
            rows += with_groups(outcome.summary, "family") if name == "train" else [outcome.summary]
        for ds in cfg.stages.eval.datasets:
            problems, report = load_problems(ds.path, ds.format)
            name = ds.name or ds.path.rsplit("/", 1)[-1]
            samples, missing = reference_samples(problems)
            if missing:
                console.print(f"{name}: {len(missing)} problem(s) have no reference solution and are not scored")
            if not samples:
                continue
            outcome = evaluate_dataset(
                pool, name, problems, samples, ks,
                tests=cfg.stages.eval.tests,
                out_dir=storage.join(cfg.run_dir, "eval", "reference", name),
            )
            rows.append(outcome.summary)
    finally:
        pool.shutdown()
    table_md = summary_markdown(rows)
    storage.write_text_atomic(storage.join(cfg.run_dir, "eval", "reference", "table.md"), table_md)
    console.print(summary_table(rows, title=f"Reference solutions through the sandbox ({time.time() - started:.0f} s)"))
    return rows
