"""`bdc run`: the stages in order on one config and one run folder.

Stages meet only through artifacts under the run folder, and each one skips the units it
finished before (problems, experts, trials), so a re-run resumes, and `--from` / `--only` can
re-run part of the pipeline on the artifacts of an earlier run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from rich.console import Console
from rich.table import Table

from bdc_ray import storage, timing
from bdc_ray.config import BDCConfig, dump_config
from bdc_ray.eval.evaluate import reference_samples
from bdc_ray.eval.runner import evaluate_dataset
from bdc_ray.eval.tables import summary_markdown, summary_table, with_groups
from bdc_ray.problems.loaders import load_problems
from bdc_ray.ray_session import init_ray
from bdc_ray.sandbox.ray_pool import make_pool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[BDCConfig, Console], Any]
    doc: str


def data_stage(cfg: BDCConfig, console: Console) -> list[dict[str, Any]]:
    splits = cfg.suite.write()
    console.print(
        f"synthetic suite: {', '.join(f'{k} {len(v)}' for k, v in splits.items())} problems -> {cfg.layout.data_dir}"
    )
    return verify_references(cfg, splits, console)


def boost_stage(cfg: BDCConfig, console: Console) -> dict[str, Any]:
    from bdc_ray.boost import boost_table, run_boost_stage

    started = time.time()
    summary = run_boost_stage(cfg.layout, cfg.stages.boost, cfg.models, cfg.sandbox, cfg.resources.sandbox, cfg.suite)
    console.print(boost_table(summary, title=f"Boost: MC-Tree-of-Agents on training problems ({time.time() - started:.0f} s)"))
    return summary


def disentangle_stage(cfg: BDCConfig, console: Console) -> dict[str, Any]:
    from bdc_ray.disentangle import clusters_table, manifest_table, run_cluster_stage, run_train_stage, source_rows_file
    from bdc_ray.models import student_model

    section = cfg.stages.disentangle
    rows = source_rows_file(cfg.layout, section.source, cfg.suite)
    clusters = run_cluster_stage(rows, cfg.layout.clusters_dir, section.cluster)
    console.print(clusters_table(clusters))
    with timing.phase("student model built or reused"):
        base_model = section.experts.base_model or student_model(cfg.models)
    manifest = run_train_stage(cfg.layout, section.experts, base_model, sft_file=rows)
    console.print(manifest_table(manifest))
    return {"clusters": clusters, "experts_dir": cfg.layout.experts_dir, "experts": len(manifest.experts)}


def customize_stage(cfg: BDCConfig, console: Console) -> dict[str, Any]:
    from bdc_ray.customize import run_customize_stage

    summary = run_customize_stage(cfg.layout, cfg.stages.customize, cfg.suite)
    console.print(
        f"hypernetwork: validation loss {summary['initial_val_loss']:.4f} (uniform mixing) -> "
        f"{summary['best_val_loss']:.4f} (best, step {summary['best_step']}) -> {summary['hypernet_dir']}"
    )
    return summary


def eval_stage(cfg: BDCConfig, console: Console) -> list[dict[str, Any]]:
    from bdc_ray.heldout import METRIC, differences_rich, heldout_table, run_heldout_stage

    section = cfg.stages.eval
    summaries, differences = run_heldout_stage(
        cfg.layout, section, cfg.suite, cfg.sandbox, cfg.resources.sandbox, models=cfg.models
    )
    console.print(heldout_table(summaries, METRIC, section.tests, section.samples))
    console.print(differences_rich(differences))
    return summaries


def serve_stage(cfg: BDCConfig, console: Console) -> dict[str, Any]:
    from bdc_ray.serve import serve_stage as write_and_maybe_deploy

    return write_and_maybe_deploy(cfg.layout, cfg.serve, cfg.ray.runtime_env, console)


def report_stage(cfg: BDCConfig, console: Console) -> str:
    from bdc_ray.report import build_report

    path = build_report(cfg.layout)
    console.print(f"report: {path}")
    return path


STAGES: tuple[Stage, ...] = (
    Stage("data", data_stage, "synthetic suite + every reference solution through the sandbox"),
    Stage("boost", boost_stage, "MC-Tree-of-Agents over the training problems"),
    Stage("disentangle", disentangle_stage, "clusters of the SFT problems and one LoRA expert per cluster"),
    Stage("customize", customize_stage, "the input-aware hypernetwork over the experts (Ray Tune)"),
    Stage("eval", eval_stage, "base, all-data LoRA and customized solver on held-out problems"),
    Stage("serve", serve_stage, "the Serve config of the run's solver (deployed when serve.deploy_in_pipeline)"),
    Stage("report", report_stage, "report.md and plots from the run folder"),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def select_stages(only: Sequence[str] | None = None, start: str | None = None) -> list[Stage]:
    """The stages to run: all, those named in `only`, or every stage from `start` on."""
    unknown = [n for n in [*(only or []), *([start] if start else [])] if n not in STAGE_NAMES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {', '.join(STAGE_NAMES)}")
    if only and start:
        raise ValueError("give --only or --from, not both")
    if only:
        return [s for s in STAGES if s.name in only]
    if start:
        return list(STAGES[STAGE_NAMES.index(start) :])
    return list(STAGES)


def run_pipeline(
    cfg: BDCConfig, console: Console | None = None, only: Sequence[str] | None = None, start: str | None = None
) -> dict[str, Any]:
    """Run the selected stages in order; returns {stage name: its result}."""
    console = console or Console()
    stages = select_stages(only, start)
    storage.makedirs(cfg.run_dir)
    storage.write_text_atomic(cfg.layout.config_file, dump_config(cfg))
    results: dict[str, Any] = {}
    with timing.recording() as timings:
        with timing.stage("ray"), timing.phase("init (a new local cluster, or joining one)"):
            init_ray(cfg.ray)
        for stage in stages:
            console.rule(f"[bold]{stage.name}[/bold]: {stage.doc}")
            started = time.perf_counter()
            with timing.stage(stage.name):
                results[stage.name] = stage.run(cfg, console)
            timings.total(stage.name, time.perf_counter() - started)
            log.info("stage %s finished in %.0f s", stage.name, timings.totals[stage.name])
            storage.write_json_atomic(cfg.layout.timings_file, timings.to_json())
    console.print(startup_table(timings))
    return results


def startup_table(timings: timing.Timings) -> Table:
    """Every stage's fixed costs (median and max when paid several times) beside its total."""
    table = Table(title="stage start-ups (seconds; <run>/timings.json)")
    for column in ("stage", "start-up", "paid", "median", "max", "sum"):
        table.add_column(column, justify="left" if column in ("stage", "start-up") else "right")
    for row in timings.rows():
        whole = row["phase"] is None
        several = row["n"] > 1
        table.add_row(
            row["stage"],
            "[bold]whole stage[/bold]" if whole else row["phase"],
            "" if whole else str(row["n"]),
            f"{row['median_s']:.2f}",
            f"{row['max_s']:.2f}" if several else "",
            f"[bold]{row['sum_s']:.1f}[/bold]" if whole else (f"{row['sum_s']:.1f}" if several else ""),
            end_section=whole,
        )
    return table


def verify_references(cfg: BDCConfig, splits: dict[str, list], console: Console) -> list[dict[str, Any]]:
    """Every reference solution of the suite and of the configured datasets, through the sandbox."""
    started = time.time()
    pool = make_pool(cfg.sandbox, cfg.resources.sandbox.ray_options())
    ks = cfg.stages.eval.k
    rows: list[dict[str, Any]] = []
    try:
        for name, problems in splits.items():
            samples, _ = reference_samples(problems)
            outcome = evaluate_dataset(
                pool, f"synthetic/{name}", problems, samples, ks,
                tests=cfg.stages.eval.tests,
                out_dir=cfg.layout.reference_dir(f"synthetic_{name}"),
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
                out_dir=cfg.layout.reference_dir(name),
            )
            rows.append(outcome.summary)
    finally:
        pool.shutdown()
    table_md = summary_markdown(rows)
    storage.write_text_atomic(cfg.layout.reference_table, table_md)
    console.print(summary_table(rows, title=f"Reference solutions through the sandbox ({time.time() - started:.0f} s)"))
    return rows
