"""`RunLayout`: every path of a run folder, in one place.

    <run>/config.yaml                      the effective config of the last `bdc run`
    <run>/timings.json                     the last `bdc run`'s stage start-ups and stage totals
    <run>/data/                            the synthetic suite (train / heldout / heldout_comp .jsonl)
    <run>/boost/traces/                    one trace record per problem
    <run>/boost/sft.jsonl                  SFT rows of the hidden-verified problems
    <run>/boost/preferences.jsonl, summary.json, settings.json, errors.jsonl
    <run>/disentangle/rows.jsonl           the rows of a synthetic stages.disentangle.source (else Boost's)
    <run>/disentangle/clusters/            clusters.json, assignments.jsonl, clusters.png, embeddings/
    <run>/disentangle/experts/             manifest.json + one peft folder per adapter
    <run>/customize/hypernet/              the hypernetwork checkpoint
    <run>/customize/tune/                  results.jsonl, best_config.json, Tune's own state
    <run>/customize/embeddings/            routing features' embedding cache
    <run>/eval/reference/<dataset>/        reference solutions through the sandbox (+ table.md)
    <run>/eval/heldout/<solver>/<split>/   samples, results, summary of each solver (+ table.md)
    <run>/serve/serve_config.yaml          what `serve run` deploys
    <run>/report/                          report.md and its plots

Stages ask the layout where their inputs and outputs are; no other module joins run-folder path
segments, so the folder's shape can be read here and changed here only. Files inside a stage's
own folder that only that stage reads are named by the module that writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bdc_ray import storage

TUNE_RESULTS_FILE = "results.jsonl"
TUNE_BEST_FILE = "best_config.json"
CLUSTER_PLOT_FILE = "clusters.png"
TABLE_FILE = "table.md"


@dataclass(frozen=True)
class RunLayout:
    root: str
    """The run folder: a local path or an s3:// / gs:// URI (`<storage_path>/<run_name>`)."""

    @property
    def runs_root(self) -> str:
        """The `storage_path` holding this run folder beside the other runs."""
        return self.root.rstrip("/").rsplit("/", 1)[0]

    def _at(self, *parts: str) -> str:
        return storage.join(self.root, *parts)

    @property
    def config_file(self) -> str:
        return self._at("config.yaml")

    @property
    def timings_file(self) -> str:
        return self._at("timings.json")

    @property
    def data_dir(self) -> str:
        return self._at("data")

    @property
    def boost_dir(self) -> str:
        return self._at("boost")

    @property
    def traces_dir(self) -> str:
        return self._at("boost", "traces")

    @property
    def sft_file(self) -> str:
        return self._at("boost", "sft.jsonl")

    @property
    def preferences_file(self) -> str:
        return self._at("boost", "preferences.jsonl")

    @property
    def boost_summary(self) -> str:
        return self._at("boost", "summary.json")

    @property
    def boost_settings(self) -> str:
        return self._at("boost", "settings.json")

    @property
    def boost_errors(self) -> str:
        return self._at("boost", "errors.jsonl")

    @property
    def disentangle_rows(self) -> str:
        return self._at("disentangle", "rows.jsonl")

    @property
    def clusters_dir(self) -> str:
        return self._at("disentangle", "clusters")

    @property
    def cluster_plot(self) -> str:
        return self._at("disentangle", "clusters", CLUSTER_PLOT_FILE)

    @property
    def experts_dir(self) -> str:
        return self._at("disentangle", "experts")

    @property
    def hypernet_dir(self) -> str:
        return self._at("customize", "hypernet")

    @property
    def tune_dir(self) -> str:
        return self._at("customize", "tune")

    @property
    def tune_results(self) -> str:
        return self._at("customize", "tune", TUNE_RESULTS_FILE)

    @property
    def tune_best(self) -> str:
        return self._at("customize", "tune", TUNE_BEST_FILE)

    @property
    def customize_embeddings(self) -> str:
        return self._at("customize", "embeddings")

    def reference_dir(self, dataset: str) -> str:
        return self._at("eval", "reference", dataset)

    @property
    def reference_table(self) -> str:
        return self._at("eval", "reference", TABLE_FILE)

    @property
    def heldout_root(self) -> str:
        return self._at("eval", "heldout")

    def heldout_dir(self, solver: str, split: str) -> str:
        return self._at("eval", "heldout", solver, split)

    @property
    def heldout_table(self) -> str:
        return self._at("eval", "heldout", TABLE_FILE)

    @property
    def heldout_differences(self) -> str:
        """Paired bootstrap intervals of the solvers' differences on the same problems."""
        return self._at("eval", "heldout", "differences.json")

    @property
    def serve_config(self) -> str:
        return self._at("serve", "serve_config.yaml")

    @property
    def report_dir(self) -> str:
        return self._at("report")
