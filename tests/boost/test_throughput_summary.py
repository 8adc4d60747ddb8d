"""benchmarks/boost_throughput.py's scenario D summary: medians per setting, parallel / sequential
ratios of the medians and per round, and the equal-work check. Made-up runs, no Ray, no clock."""

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def summary():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("boost_throughput").parallel_summary
    finally:
        sys.path.remove(str(BENCHMARKS))


def run(backend, shape, parallel, round_, gens_per_s, rollouts=12, generations=48, complete=True, in_flight=1):
    wall = generations / gens_per_s
    return {"backend": backend, "shape": shape, "parallel_rollouts": parallel, "round": round_, "in_flight": in_flight,
            "problems_asked": in_flight, "llm_generations": generations, "rollouts": rollouts, "wall_s": wall,
            "rollouts_per_s": rollouts / wall, "generations_per_s": gens_per_s, "complete": complete}


def test_medians_and_ratios_per_backend_and_shape(summary):
    runs = [run("openai", "one", 1, 1, 2.0), run("openai", "one", 4, 1, 6.0),
            run("openai", "one", 4, 2, 9.0), run("openai", "one", 1, 2, 3.0),
            run("openai", "one", 1, 3, 10.0), run("openai", "one", 4, 3, 5.0),
            run("tiny", "many", 1, 1, 4.0, in_flight=8), run("tiny", "many", 4, 1, 4.0, rollouts=11, in_flight=8)]
    one, many = summary(runs)
    assert (one["backend"], one["shape"], many["backend"], many["shape"]) == ("openai", "one", "tiny", "many")
    lo, hi = one["settings"]
    assert (lo["parallel_rollouts"], hi["parallel_rollouts"], lo["runs"]) == (1, 4, 3)
    assert lo["generations_per_s"] == 3.0 and hi["generations_per_s"] == 6.0  # medians of 2, 3, 10 and 6, 9, 5
    assert one["generations_ratio"] == pytest.approx(2.0)
    assert one["round_generations_ratios"] == pytest.approx([3.0, 3.0, 0.5])  # each round's pair, in round order
    assert one["equal_work"]
    assert many["settings"][0]["in_flight"] == 8 and many["generations_ratio"] == pytest.approx(1.0)
    assert many["rollouts_ratio"] == pytest.approx(11 / 12)  # same generations/s, fewer rollouts


def test_unequal_work_or_a_failed_run_is_flagged(summary):
    (spent_less,) = summary([run("tiny", "one", 1, 1, 2.0), run("tiny", "one", 4, 1, 2.0, generations=40)])
    assert not spent_less["equal_work"]
    (failed,) = summary([run("tiny", "one", 1, 1, 2.0), run("tiny", "one", 4, 1, 2.0, complete=False)])
    assert not failed["equal_work"]


def test_a_round_missing_one_setting_has_no_round_ratio(summary):
    (g,) = summary([run("tiny", "one", 1, 1, 2.0), run("tiny", "one", 4, 1, 4.0), run("tiny", "one", 1, 2, 2.0)])
    assert g["round_generations_ratios"] == pytest.approx([2.0])
    assert g["settings"][0]["runs"] == 2
