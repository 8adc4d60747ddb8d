"""The held-out stage on a run folder (`bdc run`'s "eval"): every solver the earlier stages made,
measured on the configured held-out splits of the run's suite; the final table written beside them.

Takes its own section (`stages.eval`), the run's suite, the sandbox settings and the `models`
section (the teachers measured beside the student); the caller has joined the Ray cluster.
"""

from __future__ import annotations

from typing import Any

from bdc_ray import storage
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.console import markdown_table
from bdc_ray.heldout.config import EvalStage
from bdc_ray.heldout.differences import differences_table, solver_differences
from bdc_ray.heldout.solvers import evaluate_solvers
from bdc_ray.heldout.tables import family_table
from bdc_ray.llm.base import SamplingParams
from bdc_ray.models import ModelsSection, local_agent_models
from bdc_ray.problems.suite_files import SuiteFolder
from bdc_ray.ray_session import require_at_once
from bdc_ray.resources import ResourceSpec
from bdc_ray.sandbox.ray_pool import make_pool, pool_actors
from bdc_ray.sandbox.section import SandboxSection
from bdc_ray.timing import in_stage

METRIC = "pass@1"
"""The metric of the table: every solver decodes greedily by default."""


@in_stage("eval")
def run_heldout_stage(
    layout: RunLayout,
    section: EvalStage,
    suite: SuiteFolder,
    sandbox: SandboxSection,
    sandbox_resources: ResourceSpec,
    models: ModelsSection | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(summaries, one per solver and split, measured again only when their inputs changed;
    the paired differences between the solvers on the same problems)."""
    # the pool is up while the generation tasks run: one task at a time must fit beside it
    require_at_once("eval", [("resources.sandbox", sandbox_resources, pool_actors(sandbox)),
                             ("stages.eval.resources", section.resources, 1)])
    splits = {name: suite.read(name) for name in section.splits}
    splits = {name: problems for name, problems in splits.items() if problems}
    sampling = SamplingParams(
        n=section.samples, temperature=section.temperature, max_new_tokens=section.max_new_tokens, seed=0
    )
    teachers = local_agent_models(models.agents, models.build_root) if models is not None and section.teachers else {}
    pool = make_pool(sandbox, sandbox_resources.ray_options())
    try:
        summaries = evaluate_solvers(
            layout, splits, section.solvers, sampling, pool, section.k, section.resources.ray_options(), section.tests,
            teachers=teachers,
        )
    finally:
        pool.shutdown()
    differences = solver_differences(layout, summaries)
    storage.write_json_atomic(layout.heldout_differences, differences)
    storage.write_text_atomic(layout.heldout_table, markdown_table(*family_table(summaries, METRIC)) + "\n\n"
                              + markdown_table(*differences_table(differences)))
    return summaries, differences
