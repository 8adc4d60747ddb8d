"""Trace records: one file per problem, typed when read back, safe names for any problem id."""

from __future__ import annotations

import asyncio

from bdc_ray.artifacts.traces import TraceRecord, finished_ids, read_traces, trace_path, write_trace
from bdc_ray.boost import SearchConfig
from bdc_ray.boost.records import preference_rows, sft_rows, trace_record
from bdc_ray.boost.search import MCTreeOfAgents
from tests.boost.fakes import FakeAgent, FakeExecutor, problem


def test_a_record_round_trips_and_feeds_the_training_data(tmp_path):
    p = problem(("double", "add one")).model_copy(update={"id": "weird id/with slashes", "family": "fam"})
    executor = FakeExecutor()
    search = MCTreeOfAgents([FakeAgent("a", [("double", 0.9), ("add one", 0.8)])], executor, SearchConfig(rollouts=4, width=1))
    result = asyncio.run(search.search(p.public_view()))
    record = trace_record(p, result, asyncio.run(executor.arun(result.best_program, p.hidden_tests)), 0.25)
    traces = str(tmp_path / "traces")
    write_trace(traces, record)
    assert trace_path(traces, p.id).startswith(traces) and "/with" not in trace_path(traces, p.id)[len(traces):]
    (back,) = read_traces(traces)
    assert isinstance(back, TraceRecord) and back == record and finished_ids(traces) == {p.id}
    assert back.hidden_passed_all and back.best_thoughts == ["double", "add one"]
    rows = list(sft_rows([back]))
    assert [r.task for r in rows] == ["p2t", "t2c"] and rows[1].code == back.best_program
    assert all(pair["problem_id"] == p.id for pair in preference_rows([back]))
    assert read_traces(str(tmp_path / "none")) == []
