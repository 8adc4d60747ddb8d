"""The `bdc` command line, in-process, on the session's local Ray cluster."""

import json

import yaml
from typer.testing import CliRunner

from bdc_ray.cli import app
from tests.conftest import FIXTURES, ROOT, cluster_address

runner = CliRunner()


def test_config_show_and_check(tmp_path):
    shown = runner.invoke(app, ["config", "show", "--config", str(ROOT / "ray_config.yaml")])
    assert shown.exit_code == 0, shown.output
    assert yaml.safe_load(shown.output)["sandbox"]["limits"]["time_s"] == 4.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("sandbox:\n  limits:\n    memory_mb: 1\n  worker: 3\n")
    checked = runner.invoke(app, ["config", "check", str(bad)])
    assert checked.exit_code == 2
    assert "sandbox.limits.memory_mb" in checked.output and "sandbox.worker: unknown key" in checked.output
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text("run_name: one\nsandbox: {limits: {time_s: 2}}\n")
    second.write_text("run_name: two\n")
    merged = runner.invoke(app, ["config", "show", "--config", str(ROOT / "ray_config.yaml"),
                                 "--override", str(first), "--override", str(second)])
    assert merged.exit_code == 0, merged.output
    shown = yaml.safe_load(merged.output)
    assert (shown["run_name"], shown["sandbox"]["limits"]["time_s"]) == ("two", 2.0)


def test_data_synth_writes_three_splits(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"synthetic": {"train_per_family": 3, "heldout_per_family": 2, "heldout_comp_per_family": 1}}}))
    result = runner.invoke(app, ["data", "synth", "--config", str(cfg), "--out", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "data" / "train.jsonl").read_text().splitlines()) == 18


def test_eval_reference_on_ray_writes_results_and_summary(ray_local, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["eval", "--problems", str(FIXTURES / "apps" / "apps-5.jsonl"), "--reference", "--k", "1", "--out", str(out),
         "--address", cluster_address()],
    )
    assert result.exit_code == 0, result.output
    assert "scored on Ray" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_problems"] == 5 and summary["pass@1"] == 1.0
    assert len((out / "results.jsonl").read_text().splitlines()) == 5
    assert "pass@1" in result.output


def test_eval_samples_and_argument_errors(tmp_path):
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "    return False\n"}) + "\n")
    problems = FIXTURES / "humaneval" / "HumanEval-3.jsonl.gz"
    ok = runner.invoke(app, ["eval", "-p", str(problems), "-s", str(samples), "--k", "1", "-o", str(tmp_path / "o")])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["status_counts"] == {"failed": 1}
    both = runner.invoke(app, ["eval", "-p", str(problems), "-s", str(samples), "--reference", "-o", str(tmp_path)])
    assert both.exit_code == 2 and "exactly one" in both.output
    bad_k = runner.invoke(app, ["eval", "-p", str(problems), "--reference", "--k", "0", "-o", str(tmp_path)])
    assert bad_k.exit_code == 2
    missing = runner.invoke(app, ["eval", "-p", str(tmp_path / "nope.jsonl"), "--reference", "-o", str(tmp_path)])
    assert missing.exit_code == 2 and "cannot load problems" in missing.output
    sized_ray = runner.invoke(app, ["eval", "-p", str(problems), "--reference", "-o", str(tmp_path), "--address", "auto", "--workers", "2"])
    assert sized_ray.exit_code == 2 and "--workers sizes the in-process pool" in sized_ray.output


def test_run_refuses_unknown_or_conflicting_stages():
    unknown = runner.invoke(app, ["run", "--only", "boost,nope"])
    assert unknown.exit_code == 2 and "unknown stage(s) ['nope']" in unknown.output
    both = runner.invoke(app, ["run", "--only", "boost", "--from", "boost"])
    assert both.exit_code == 2 and "not both" in both.output


def test_report_rebuilds_from_a_run_folder(tmp_path):
    (tmp_path / "config.yaml").write_text("run_name: r\n")
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report" / "report.md").read_text().startswith("# bdc-ray run report")
    missing = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such run folder" in missing.output
    # a message is printed as it is, even when it looks like console markup
    odd = runner.invoke(app, ["report", str(tmp_path / "[/red]")])
    assert odd.exit_code == 2 and "[/red]" in odd.output


def test_boost_show_writes_the_page_of_one_trace(tmp_path):
    from tests.report.explorer_runs import fake_records

    trace = tmp_path / "t.jsonl"
    trace.write_text(json.dumps(fake_records()[1]) + "\n")
    shown = runner.invoke(app, ["boost", "show", str(trace)])
    assert shown.exit_code == 0, shown.output
    assert shown.output.strip() == str(tmp_path / "t.html") and "p/tree" in (tmp_path / "t.html").read_text()
    elsewhere = runner.invoke(app, ["boost", "show", str(trace), "--out", str(tmp_path / "x" / "page.html")])
    assert elsewhere.exit_code == 0 and (tmp_path / "x" / "page.html").is_file()
    missing = runner.invoke(app, ["boost", "show", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "cannot show" in missing.output


def test_boost_without_a_subcommand_runs_the_stage(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  boost:\n    nope: 1\n")
    result = runner.invoke(app, ["boost", "--config", str(bad)])
    assert result.exit_code == 2 and "stages.boost.nope: unknown key" in result.output  # the stage's own config load
