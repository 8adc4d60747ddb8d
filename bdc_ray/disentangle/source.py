"""Which rows Disentangle clusters and trains on: Boost's, or the synthetic suite's references.

BDC's rows are Boost's verified solutions (`<run>/boost/sft.jsonl`). A run whose agents verify
too few problems to cluster (the tiny agents of cluster/local_override.yaml, a benchmark of the
later stages) can name the run's synthetic suite instead, as `stages.customize.source` can: its
reference solutions become rows in Boost's format, written to `<run>/disentangle/rows.jsonl`,
which clustering and training then read like an sft.jsonl. A JSONL file of rows works too.
"""

from __future__ import annotations

from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.artifacts.sft import problem_rows, write_sft_rows
from bdc_ray.problems.suite_files import SuiteFolder

SYNTHETIC = "synthetic:"
SPLITS = ("train", "heldout", "heldout_comp")


def source_rows_file(layout: RunLayout, source: str, suite: SuiteFolder) -> str:
    """The rows file of `source` ('boost', 'synthetic:<split>' or a file), written first when it
    is the suite's (the same rows each time: the clustering's input digest sees no change)."""
    if source == "boost":
        return layout.sft_file
    if source.startswith(SYNTHETIC):
        write_sft_rows(layout.disentangle_rows, problem_rows(suite.read(source[len(SYNTHETIC):])))
        return layout.disentangle_rows
    return source
