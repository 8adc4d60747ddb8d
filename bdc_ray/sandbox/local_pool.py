"""The sandbox pool without Ray: one warm `Sandbox` in the calling process.

On one machine a Ray cluster adds nothing to scoring a samples file: its sandbox actor holds
the same `Sandbox` (the same pre-forked, namespaced workers, the same limits) on the same
cores, and starting the cluster costs more than the 820 HumanEval runs themselves. So
`bdc eval` without a cluster address runs this pool, which answers `run_many` like the Ray
pool (`ray_pool.SandboxPool`: jobs in, results in the jobs' order, a progress bar) and never
imports Ray.
"""

from __future__ import annotations

from typing import Sequence

from tqdm.auto import tqdm

from bdc_ray.problems.types import Test
from bdc_ray.sandbox.limits import SandboxLimits
from bdc_ray.sandbox.pool import Sandbox
from bdc_ray.sandbox.results import RunResult
from bdc_ray.sandbox.section import SandboxSection


class LocalPool:
    """A warm sandbox of `workers` workers in this process, with the Ray pool's `run_many`."""

    def __init__(self, workers: int, limits: SandboxLimits):
        self.workers = workers
        self.sandbox = Sandbox(workers=workers, limits=limits)

    def run_many(
        self,
        jobs: Sequence[tuple[str, list[Test]]],
        limits: SandboxLimits | None = None,
        desc: str | None = "sandbox runs",
    ) -> list[RunResult]:
        """Run every job on the warm workers; results come back in the jobs' order."""
        with tqdm(total=len(jobs), desc=desc, unit="run", disable=desc is None) as bar:
            return self.sandbox.run_many(jobs, limits=limits, on_result=lambda _: bar.update(1))

    def shutdown(self) -> None:
        self.sandbox.close()


def make_local_pool(section: SandboxSection, workers: int | None = None) -> LocalPool:
    """The pool of the `sandbox:` section on this machine: as many warm workers as the Ray pool
    would hold on one node (`actors` x `workers_per_actor`), unless `workers` says otherwise."""
    return LocalPool(workers or (section.actors or 1) * section.workers_per_actor, section.limits)
