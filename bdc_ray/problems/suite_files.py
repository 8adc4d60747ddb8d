"""The synthetic suite as files: one bdc-format JSONL per split, shared by every stage of a run."""

from __future__ import annotations

from bdc_ray import storage
from bdc_ray.problems.loaders import read_problems_jsonl, write_problems_jsonl
from bdc_ray.problems.synth import SynthConfig, generate_suite
from bdc_ray.problems.types import Problem

SPLITS = ("train", "heldout", "heldout_comp")


def write_suite(config: SynthConfig, folder: str) -> dict[str, list[Problem]]:
    suite = generate_suite(config)
    splits = {"train": suite.train, "heldout": suite.heldout, "heldout_comp": suite.heldout_comp}
    for name, problems in splits.items():
        write_problems_jsonl(storage.join(folder, f"{name}.jsonl"), problems)
    return splits


def read_split(config: SynthConfig, folder: str, split: str) -> list[Problem]:
    """One split of the suite in `folder`, writing the whole suite there first if it is missing."""
    if split not in SPLITS:
        raise ValueError(f"unknown synthetic split {split!r}; splits: {', '.join(SPLITS)}")
    path = storage.join(folder, f"{split}.jsonl")
    if not storage.exists(path):
        return write_suite(config, folder)[split]
    return read_problems_jsonl(path)
