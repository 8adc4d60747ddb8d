"""bdc_ray.timing: phases are labelled by the stage around them, kept by the active recorder, logged,
and travel between processes as JSON. Figures are never compared with a threshold."""

from __future__ import annotations

import logging
import threading

import pytest

from bdc_ray import timing


def test_a_phase_is_logged_with_its_stage_and_kept_by_the_recorder(caplog):
    caplog.set_level(logging.INFO, logger="bdc_ray.timing")
    with timing.recording() as timings, timing.stage("boost"):
        with timing.phase("agents started"):
            pass
        with timing.phase("model loaded", unit="tiny-a"):
            pass
    assert [(p.stage, p.name, p.unit) for p in timings.phases] == [
        ("boost", "agents started", None), ("boost", "model loaded", "tiny-a")]
    assert all(p.seconds >= 0 for p in timings.phases)
    assert any(m.startswith("boost: agents started in ") and m.endswith(" s") for m in caplog.messages)
    assert any(m.startswith("boost: model loaded (tiny-a) in ") for m in caplog.messages)


def test_without_a_recorder_a_phase_is_only_logged(caplog):
    caplog.set_level(logging.INFO, logger="bdc_ray.timing")
    with timing.recording() as outer:
        pass
    with timing.phase("alone"):
        pass
    assert outer.phases == [] and any(m.startswith("-: alone in ") for m in caplog.messages)


def test_a_failed_block_is_still_timed():
    with timing.recording() as timings, pytest.raises(RuntimeError), timing.phase("start-up that fails"):
        raise RuntimeError("boom")
    assert [p.name for p in timings.phases] == ["start-up that fails"]


def test_the_enclosing_stage_names_the_phases_of_shared_code():
    @timing.in_stage("disentangle")
    def cluster_step():
        with timing.phase("embedder loaded"):
            pass

    with timing.recording() as timings:
        cluster_step()  # alone, as `bdc disentangle cluster` runs it
        with timing.stage("customize"):
            cluster_step()  # inside another stage, as the pipeline would call shared code
    assert [p.stage for p in timings.phases] == ["disentangle", "customize"]
    assert timing.current_stage() is None


def test_figures_recorded_from_threads_reach_the_recorder():
    with timing.recording() as timings, timing.stage("disentangle"):
        threads = [threading.Thread(target=timing.record, args=("expert run: first step", 0.5, f"expert_{i}"))
                   for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(p.unit for p in timings.phases) == [f"expert_{i}" for i in range(4)]
    assert {p.stage for p in timings.phases} == {"disentangle"}


def test_rows_aggregate_repeated_phases_and_close_each_stage_with_its_total():
    timings = timing.Timings()
    for unit, seconds in (("a", 1.0), ("b", 3.0), ("c", 2.0)):
        timings.add(timing.Phase("disentangle", "expert run: launch -> first step", seconds, unit))
    timings.add(timing.Phase("ray", "init", 4.0))
    timings.total("disentangle", 100.0)
    rows = timings.rows()
    assert rows[0] == {"stage": "disentangle", "phase": "expert run: launch -> first step", "n": 3, "median_s": 2.0,
                       "max_s": 3.0, "sum_s": 6.0}
    assert rows[1]["phase"] is None and rows[1]["sum_s"] == 100.0
    assert rows[2]["stage"] == "ray" and rows[2]["n"] == 1


def test_phases_travel_as_json_and_merge_with_a_unit():
    with timing.recording() as worker, timing.stage("eval"):
        timing.record("solver loaded", 1.5)
        timing.record("embedder loaded", 0.5, unit="own unit")
    sent = worker.to_json()
    assert timing.Timings.from_json(sent).to_json() == sent
    with timing.recording() as driver:
        timing.merge(sent, unit="base / heldout")
    assert [(p.stage, p.name, p.unit) for p in driver.phases] == [
        ("eval", "solver loaded", "base / heldout"), ("eval", "embedder loaded", "own unit")]
