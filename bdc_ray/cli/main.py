"""The `bdc` app and its small commands: config, data, models, eval, boost, run, report.

The Disentangle, Customize and Serve command groups and `bdc plan` live beside this module and are
mounted here.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from bdc_ray.cli.customize import app as customize_app
from bdc_ray.cli.disentangle import app as disentangle_app
from bdc_ray.cli.plan import plan_cmd
from bdc_ray.cli.serve import app as serve_app
from bdc_ray.cli.support import ConfigOpt, OverrideOpt, console, err_console, fail, load_or_exit

if TYPE_CHECKING:
    from bdc_ray.config import BDCConfig
    from bdc_ray.sandbox.local_pool import LocalPool
    from bdc_ray.sandbox.ray_pool import SandboxPool

app = typer.Typer(help="BDC (Boost, Disentangle, Customize) for code generation on Ray.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect and validate ray_config.yaml.", no_args_is_help=True)
data_app = typer.Typer(help="Problem data: the synthetic suite.", no_args_is_help=True)
models_app = typer.Typer(help="Models: tiny models built locally.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(disentangle_app, name="disentangle", help="Disentangle: clusters of the SFT data and one LoRA expert per cluster.")
app.add_typer(customize_app, name="customize", help="Customize: the input-aware hypernetwork over the experts (train, tune).")
app.add_typer(serve_app, name="serve", help="Serve: the customized solver behind an OpenAI-compatible HTTP API (Ray Serve).")
app.command("plan")(plan_cmd)

def _load(path: Path | None, override_files: list[Path] | None = None, **overrides) -> BDCConfig:
    return load_or_exit(path, {k: v for k, v in overrides.items() if v is not None} or None, override_files)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@config_app.command("show")
def config_show(config: Optional[Path] = ConfigOpt, override: Optional[list[Path]] = OverrideOpt) -> None:
    """Print the effective config (file + override files + defaults, paths resolved)."""
    from bdc_ray.config import dump_config

    console.print(dump_config(_load(config, override)), end="", markup=False, highlight=False)


@config_app.command("check")
def config_check(file: Path = typer.Argument(..., help="Config file to validate.")) -> None:
    """Validate FILE; exit 2 with every bad key path listed if it is invalid."""
    _load(file)
    console.print(f"{file}: ok")


@data_app.command("synth")
def data_synth(
    config: Optional[Path] = ConfigOpt,
    out: Optional[Path] = typer.Option(None, help="Folder for train/heldout/heldout_comp.jsonl (default: the run folder's data/)."),
    seed: Optional[int] = typer.Option(None, help="Override data.synthetic.seed."),
) -> None:
    """Generate the synthetic heterogeneous task suite."""
    from bdc_ray.problems.suite_files import SuiteFolder

    overrides = {"data": {"synthetic": {"seed": seed}}} if seed is not None else {}
    cfg = _load(config, **overrides)
    splits = (SuiteFolder(cfg.data.synthetic, str(out.resolve())) if out else cfg.suite).write()
    for name, problems in splits.items():
        console.print(f"{name}: {len(problems)} problems")


@app.command("eval")
def eval_cmd(
    problems: Path = typer.Option(..., "--problems", "-p", help="Problem file (HumanEval, MBPP, APPS, CodeContests, bdc)."),
    samples: Optional[Path] = typer.Option(None, "--samples", "-s", help="Samples JSONL (task_id + completion)."),
    reference: bool = typer.Option(False, "--reference", help="Evaluate the dataset's own reference solutions."),
    k: str = typer.Option("1,10", "--k", help="Comma-separated pass@k values."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for results.jsonl and summary.json."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Problem file format (default: detect)."),
    tests: str = typer.Option("all", "--tests", help="Which tests decide a pass: all, hidden or public."),
    address: Optional[str] = typer.Option(
        None,
        "--address",
        help="Score on this Ray cluster ('auto', 'ray://host:10001'; 'local' starts a new local one). "
        "Default: ray.address or RAY_ADDRESS; with neither, the sandbox pool runs in this process, without Ray.",
    ),
    workers: Optional[int] = typer.Option(
        None, "--workers", min=1, help="Warm sandbox workers of the in-process pool (default: sandbox.actors x workers_per_actor)."
    ),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Score samples (or reference solutions) with pass@k, APPS pass rate and strict accuracy."""
    from bdc_ray.eval.evaluate import read_samples, reference_samples
    from bdc_ray.eval.runner import evaluate_dataset
    from bdc_ray.eval.tables import summary_table, with_groups
    from bdc_ray.problems.loaders import load_problems

    if reference == (samples is not None):
        fail("give exactly one of --samples or --reference")
    if tests not in ("all", "hidden", "public"):
        fail(f"--tests must be all, hidden or public, got {tests!r}")
    try:
        ks = sorted({int(x) for x in k.split(",") if x.strip()})
        if not ks or min(ks) < 1:
            raise ValueError
    except ValueError:
        fail(f"--k must be comma-separated integers >= 1, got {k!r}")
    cfg = _load(config)
    try:
        loaded, report = load_problems(str(problems), fmt)
    except (OSError, ValueError) as err:
        fail(f"cannot load problems {err}")
    if report.errors:
        err_console.print(f"{len(report.errors)} malformed problem record(s) skipped (listed above)")
    if reference:
        chosen, missing = reference_samples(loaded)
        if missing:
            console.print(f"{len(missing)} problem(s) have no reference solution and are not scored")
    else:
        chosen, sample_errors = read_samples(str(samples))
        if sample_errors:
            err_console.print(f"{len(sample_errors)} malformed sample line(s) skipped")
    if not chosen:
        err_console.print("[red]nothing to evaluate[/red]")
        raise typer.Exit(1)
    pool, where = _eval_pool(cfg, address, workers)
    try:
        outcome = evaluate_dataset(pool, problems.name, loaded, chosen, ks, tests=tests, out_dir=str(out.resolve()))  # type: ignore[arg-type]
    finally:
        pool.shutdown()
    console.print(summary_table(with_groups(outcome.summary, "difficulty"), title=f"bdc eval: {problems.name}"))
    console.print(f"scored {where}")
    console.print(f"results: {out / 'results.jsonl'}  summary: {out / 'summary.json'}")


def _eval_pool(cfg: BDCConfig, address: str | None, workers: int | None) -> tuple[LocalPool | SandboxPool, str]:
    """(pool, where it runs): the Ray pool when a cluster is named (--address, ray.address,
    RAY_ADDRESS), else the same warm sandbox in this process, so a laptop never starts Ray."""
    import os

    cluster = address or cfg.ray.address or os.environ.get("RAY_ADDRESS")
    if cluster:
        if workers is not None:
            fail("--workers sizes the in-process pool; on Ray, sandbox.workers_per_actor does")
        from bdc_ray.ray_session import init_ray
        from bdc_ray.sandbox.ray_pool import make_pool

        init_ray(cfg.ray.model_copy(update={"address": cluster}))
        return make_pool(cfg.sandbox, cfg.resources.sandbox.ray_options()), f"on Ray ({cluster})"
    from bdc_ray.sandbox.local_pool import make_local_pool

    pool = make_local_pool(cfg.sandbox, workers)
    return pool, f"in this process: {pool.workers} warm sandbox workers, isolation {pool.sandbox.isolation.mode}"


@models_app.command("build-tiny")
def models_build_tiny(
    out: Path = typer.Option(..., "--out", "-o", help="Folder under which the model is built (cached by config hash)."),
    seed: int = typer.Option(0, help="Seed of weights, data subset and batch order."),
    layers: int = typer.Option(4, help="Decoder layers."),
    hidden: int = typer.Option(128, help="Hidden size."),
    steps: Optional[int] = typer.Option(None, help="Optimizer steps (default: the recipe's)."),
    budget_s: float = typer.Option(300.0, "--budget-s", help="Safety cap on the build in seconds."),
    name: Optional[str] = typer.Option(None, help="Folder label."),
) -> None:
    """Train a tokenizer and a small Llama from scratch on the synthetic suite; save in HF format."""
    from pydantic import ValidationError

    from bdc_ray.tiny import TinyModelConfig, build_tiny, load_build_info

    fields = {"seed": seed, "layers": layers, "hidden": hidden, "budget_s": budget_s, "name": name}
    if steps is not None:
        fields["steps"] = steps
    try:
        recipe = TinyModelConfig(**fields)
    except ValidationError as err:
        fail(f"bad model recipe {err}")
    path = build_tiny(recipe, out.resolve())
    info = load_build_info(path)
    console.print(
        f"{path}\n{info.parameters:,} parameters, {info.steps_done} steps, final loss {info.final_loss:.3f}, "
        f"{info.wall_s:.0f} s ({info.tokens_per_s:,.0f} tokens/s)"
    )


boost_app = typer.Typer(
    help="Boost: MC-Tree-of-Agents over the configured problems; `bdc boost show TRACE` draws a trace's tree.",
    invoke_without_command=True,
)
app.add_typer(boost_app, name="boost")


@boost_app.callback()
def boost_cmd(
    ctx: typer.Context,
    config: Optional[Path] = ConfigOpt,
    run_name: Optional[str] = typer.Option(None, help="Override run_name."),
    max_problems: Optional[int] = typer.Option(None, help="Override stages.boost.max_problems."),
) -> None:
    """MC-Tree-of-Agents over the configured problems; traces, sft.jsonl, preferences.jsonl."""
    if ctx.invoked_subcommand is not None:
        return
    from bdc_ray.boost import StaleTracesError, run_boost_stage
    from bdc_ray.ray_session import init_ray

    overrides = {"stages": {"boost": {"max_problems": max_problems}}} if max_problems else {}
    cfg = _load(config, run_name=run_name, **overrides)
    init_ray(cfg.ray)
    try:
        summary = run_boost_stage(cfg.layout, cfg.stages.boost, cfg.models, cfg.sandbox, cfg.resources.sandbox, cfg.suite)
    except StaleTracesError as err:
        fail(str(err))
    console.print_json(data=summary)
    console.print(f"artifacts: {cfg.layout.boost_dir}")


@boost_app.command("show")
def boost_show(
    trace: str = typer.Argument(..., help="A trace file (boost/traces/*.jsonl; local path or s3:// / gs:// URI)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="The HTML to write (default: beside the trace, .html)."),
    open_page: bool = typer.Option(False, "--open", help="Open the page in the default web browser."),
) -> None:
    """Write the tree explorer page of one trace file (self-contained HTML) and print its path."""
    import webbrowser

    from bdc_ray.report import write_trace_page

    try:
        page = write_trace_page(trace, out)
    except (OSError, ValueError) as err:
        fail(f"cannot show {trace}: {err}")
    typer.echo(page)
    if open_page:
        webbrowser.open(page if "://" in page else Path(page).as_uri())


@app.command("run")
def run_cmd(
    config: Optional[Path] = ConfigOpt,
    run_name: Optional[str] = typer.Option(None, help="Override run_name."),
    only: Optional[str] = typer.Option(None, "--only", help="Comma-separated stages to run alone, e.g. customize,eval."),
    start: Optional[str] = typer.Option(None, "--from", help="Run this stage and every later one."),
    override: Optional[list[Path]] = OverrideOpt,
) -> None:
    """Run the pipeline on the config (README's main command); every stage resumes."""
    from bdc_ray.boost import StaleTracesError
    from bdc_ray.pipeline import STAGE_NAMES, run_pipeline, select_stages

    chosen = [s.strip() for s in only.split(",") if s.strip()] if only else None
    try:
        select_stages(chosen, start)
    except ValueError as err:
        fail(f"{err} (stages: {', '.join(STAGE_NAMES)})")
    cfg = _load(config, override, run_name=run_name)
    try:
        run_pipeline(cfg, console, only=chosen, start=start)
    except StaleTracesError as err:
        fail(str(err))


@app.command("report")
def report_cmd(run_dir: str = typer.Argument(..., help="A run folder (local path or s3:// / gs:// URI).")) -> None:
    """Rebuild report.md and its plots from a run folder's artifacts."""
    from bdc_ray import storage
    from bdc_ray.artifacts.layout import RunLayout
    from bdc_ray.report import build_report

    if not storage.exists(run_dir):
        fail(f"no such run folder: {run_dir}")
    console.print(f"report: {build_report(RunLayout(run_dir))}")
