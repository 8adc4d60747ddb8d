"""Scoring against the real sandbox (no Ray): records, pass@k, groups and bad samples."""

import json

import pytest

from bdc_ray.eval.evaluate import Sample, evaluate_samples, read_samples, reference_samples, summarize
from bdc_ray.problems.loaders import load_problems
from bdc_ray.problems.types import CallTest, Problem, StdioTest
from bdc_ray.sandbox import Sandbox, SandboxLimits
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(workers=2, limits=SandboxLimits(time_s=5, program_time_s=30)) as sb:
        yield sb


def _problem(pid, difficulty):
    return Problem(
        id=pid, source="t", prompt="square", difficulty=difficulty,
        public_tests=[CallTest(fn_name="f", args=[2], expected=4)],
        hidden_tests=[CallTest(fn_name="f", args=[3], expected=9), CallTest(fn_name="f", args=[1], expected=1)],
    )


def test_pass_at_k_pass_rate_and_groups(sandbox, tmp_path):
    problems = [_problem("a", "easy"), _problem("b", "hard")]
    right, wrong, partial = "def f(x):\n    return x * x\n", "def f(x):\n    return 0\n", "def f(x):\n    return x * 2 if x == 2 else x\n"
    samples_file = tmp_path / "s.jsonl"
    rows = [{"task_id": "a", "completion": c} for c in (right, wrong)] + [{"task_id": "b", "completion": c} for c in (partial, wrong)]
    samples_file.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n" + json.dumps({"completion": "x"}) + "\n")
    samples, errors = read_samples(str(samples_file))
    assert len(samples) == 4 and len(errors) == 2 and errors[0].endswith(":5: Expecting value: line 1 column 1 (char 0)")
    records, unknown = evaluate_samples(problems, samples, sandbox.run_many)
    assert not unknown and [r["status"] for r in records] == ["passed", "failed", "failed", "failed"]
    summary = summarize(records, [1, 2, 5])
    assert summary["pass@1"] == pytest.approx(0.25)  # a: 1/2, b: 0
    assert summary["pass@2"] == pytest.approx(0.5)  # a: 1, b: 0
    assert "pass@5" not in summary  # only 2 samples per problem
    # pass rate (fraction of tests passed): a -> mean(1, 0), b -> mean(2/3, 0)
    assert summary["pass_rate"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert set(summary["by_difficulty"]) == {"easy", "hard"}
    hidden_only, _ = evaluate_samples(problems, samples[:1], sandbox.run_many, tests="hidden")
    assert hidden_only[0]["total"] == 2


def test_reference_solutions_of_the_fixtures_pass(sandbox):
    for rel in ("humaneval/HumanEval-3.jsonl.gz", "mbpp/sanitized-mbpp-3.json", "apps/apps-5.jsonl", "codecontests/codecontests-repr.jsonl"):
        problems, _ = load_problems(FIXTURES / rel)
        samples, _ = reference_samples(problems)
        records, _ = evaluate_samples(problems, samples, sandbox.run_many)
        assert records and all(r["status"] == "passed" for r in records), (rel, records)


def test_unknown_task_ids_are_reported_not_scored(sandbox):
    from bdc_ray.eval.evaluate import Sample

    records, errors = evaluate_samples([_problem("a", None)], [Sample(task_id="zzz", completion="")], sandbox.run_many)
    assert records == [] and "zzz" in errors[0]


def _any_pair_problem(source):
    """Print two numbers that sum to n: many outputs are right, the data keeps one."""
    return Problem(
        id=f"pair-{source}", source=source, prompt="two numbers summing to n",
        hidden_tests=[StdioTest(input="4\n", output="1 3", source=source), StdioTest(input="6\n", output="1 5", source=source)],
        reference_solutions=["n = int(input())\nprint(1, n - 1)", "n = int(input())\nprint(n - 1, 1)", "print(0, int(input()))"],
    )


def test_wrong_answers_a_reference_solution_shares_count_as_multiple_valid_outputs(sandbox):
    problems = [_any_pair_problem("codecontests"), _any_pair_problem("humaneval"), _problem("sq", None)]
    problems[0].reference_solutions.append("print(2, 2)")  # never used: two probes at most
    other_answer = "n = int(input())\nprint(2, n - 2)"
    samples = [
        Sample(task_id="pair-codecontests", completion=other_answer),
        Sample(task_id="pair-codecontests", completion="print(1, 3, 5)"),  # too many tokens: no reference does that
        Sample(task_id="pair-humaneval", completion=other_answer),  # not a benchmark without a checker
        Sample(task_id="sq", completion="def f(x):\n    return 0\n"),
    ]
    records, _ = evaluate_samples(problems, samples, sandbox.run_many)
    assert [r["status"] for r in records] == ["failed"] * 4
    assert [r.get("multiple_outputs", False) for r in records] == [True, False, False, False]
    summary = summarize(records, [1])
    assert summary["wrong_multiple_outputs"] == 1 and summary["status_counts"] == {"failed": 4}


def test_timeouts_are_counted_apart_from_crashes(sandbox):
    problem = _problem("slow", None)
    samples = [
        Sample(task_id="slow", completion="def f(x):\n    while True:\n        pass\n"),
        Sample(task_id="slow", completion="def f(x):\n    raise ValueError\n"),
    ]
    fast = SandboxLimits(time_s=0.5, program_time_s=5)
    records, _ = evaluate_samples([problem], samples, lambda jobs: sandbox.run_many(jobs, limits=fast, stop_on_first_failure=True))
    summary = summarize(records, [1])
    assert [r["status"] for r in records] == ["timeout", "error"]
    assert summary["timeouts"] == 1 and summary["status_counts"] == {"timeout": 1, "error": 1}
