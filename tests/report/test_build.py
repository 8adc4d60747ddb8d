"""The report from a run folder: sections for what exists, a clear note for what does not."""

import asyncio

from bdc_ray import storage
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.artifacts.traces import write_trace
from bdc_ray.boost import SearchConfig
from bdc_ray.boost.records import trace_record
from bdc_ray.boost.search import MCTreeOfAgents
from bdc_ray.report import build_report
from tests.boost.fakes import FakeAgent, FakeExecutor, problem


def _write_traces(run_dir: str) -> None:
    """Real searches (deterministic agents) turned into trace records by the real record code."""
    a = FakeAgent("a", [("double", 0.9), ("negate", 0.2)])
    b = FakeAgent("b", [("add one", 0.8)])
    executor = FakeExecutor()
    search = MCTreeOfAgents([a, b], executor, SearchConfig(rollouts=4, width=1, n_sim=1))
    for i, steps in enumerate([("double", "add one"), ("square",)]):
        p = problem(steps).model_copy(update={"id": f"fake/{i}", "family": f"fam{i}"})
        result = asyncio.run(search.search(p.public_view()))
        hidden = asyncio.run(executor.arun(result.best_program, p.hidden_tests))
        write_trace(RunLayout(run_dir).traces_dir, trace_record(p, result, hidden, 0.1))


def test_report_has_boost_statistics_and_plot(tmp_path):
    run_dir = str(tmp_path / "run")
    _write_traces(run_dir)
    storage.write_text_atomic(storage.join(run_dir, "config.yaml"), "run_name: run\n")
    text = storage.read_text(build_report(RunLayout(run_dir)))
    assert "## Boost: MC-Tree-of-Agents" in text
    # one of the two problems is solvable by these agents, only through a thought chain ("double", then "add one")
    assert "| 2 | 1 (50.0%) | 0 (0.0%) | 1 (50.0%) | 1 (50.0%) |" in text
    assert "![tree statistics](boost_tree.png)" in text and "![anytime curve](boost_anytime.png)" in text
    for name in ("boost_tree.png", "boost_anytime.png"):
        png = (tmp_path / "run" / "report" / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "| ray |" in text and "run_name: run" in text
    assert "eval/reference/table.md not found" in text  # a stage that did not run is named, not fatal


def test_report_of_an_empty_run_folder_names_every_missing_stage(tmp_path):
    text = storage.read_text(build_report(RunLayout(str(tmp_path / "nothing"))))
    assert "boost/traces not found" in text and "(config.yaml missing)" in text
