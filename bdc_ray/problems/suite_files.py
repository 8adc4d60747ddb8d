"""The synthetic suite as files: one bdc-format JSONL per split, shared by every stage of a run."""

from __future__ import annotations

from dataclasses import dataclass

from bdc_ray import storage
from bdc_ray.problems.loaders import read_problems_jsonl, write_problems_jsonl
from bdc_ray.problems.synth import SPLITS, SynthConfig, generate_suite
from bdc_ray.problems.types import Problem


@dataclass(frozen=True)
class SuiteFolder:
    """A run's suite: the config that generates it and the folder its split files live in.

    Stages that read a split (`synthetic:<split>` sources, the held-out evaluation) are handed
    one of these: the suite is written on first use, so any stage can run first.
    """

    config: SynthConfig
    folder: str

    def write(self) -> dict[str, list[Problem]]:
        suite = generate_suite(self.config)
        splits = {"train": suite.train, "heldout": suite.heldout, "heldout_comp": suite.heldout_comp}
        for name, problems in splits.items():
            write_problems_jsonl(storage.join(self.folder, f"{name}.jsonl"), problems)
        return splits

    def read(self, split: str) -> list[Problem]:
        """One split of the suite, writing the whole suite first if it is missing."""
        if split not in SPLITS:
            raise ValueError(f"unknown synthetic split {split!r}; splits: {', '.join(SPLITS)}")
        path = storage.join(self.folder, f"{split}.jsonl")
        if not storage.exists(path):
            return self.write()[split]
        return read_problems_jsonl(path)
