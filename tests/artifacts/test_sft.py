"""SFT rows -> (prompt, response) in the one prompt format; which rows a completion model trains on;
the typed reader names what is wrong with a file."""

from __future__ import annotations

import pytest

from bdc_ray.artifacts.sft import SFTRow, problem_rows, prompt_response, read_sft_problems, read_sft_rows
from bdc_ray.artifacts.sft import training_rows, write_sft_rows
from bdc_ray.problems.prompt_format import prompt_text
from bdc_ray.problems.synth import SynthConfig, format_prompt, format_target, generate_suite
from bdc_ray.tiny import tiny_prompt


@pytest.fixture(scope="module")
def problems():
    return generate_suite(SynthConfig(train_per_family=3, heldout_per_family=0, heldout_comp_per_family=0)).train


def test_prompt_and_response_are_the_suites_format(problems) -> None:
    for problem, row in zip(problems, problem_rows(problems), strict=True):
        prompt, response = prompt_response(row)
        assert prompt == format_prompt(problem) == tiny_prompt(problem)
        assert response == format_target(problem)
        # Thought-to-code prompting appends the thoughts exactly as the t2c response starts.
        assert prompt_text(row.problem, row.thoughts) == tiny_prompt(problem, with_thoughts=True)
    row = problem_rows(problems[:1])[0]
    assert prompt_response(row.model_copy(update={"task": "p2t", "code": None}))[1] == "".join(f"# {t}\n" for t in row.thoughts)


def test_bad_rows_are_named(problems) -> None:
    row = problem_rows(problems[:1])[0]
    with pytest.raises(ValueError, match="has no code"):
        prompt_response(row.model_copy(update={"code": None}))
    with pytest.raises(ValueError, match="unknown task 'x'"):
        prompt_response(row.model_copy(update={"task": "x"}))
    with pytest.raises(ValueError, match="no thoughts"):
        prompt_response(row.model_copy(update={"task": "p2t", "thoughts": []}))


def test_p2t_rows_are_kept_only_without_a_t2c_row(problems) -> None:
    t2c = problem_rows(problems[:2])
    p2t = [r.model_copy(update={"task": "p2t", "code": None}) for r in t2c]
    orphan = p2t[0].model_copy(update={"problem_id": "only-thoughts"})
    assert training_rows([p2t[0], t2c[0], p2t[1], t2c[1], orphan]) == [t2c[0], t2c[1], orphan]


def test_rows_round_trip_and_a_bad_line_is_named(problems, tmp_path) -> None:
    path = str(tmp_path / "sft.jsonl")
    rows = problem_rows(problems[:3])
    assert write_sft_rows(path, rows) == 3 and read_sft_rows(path) == rows
    (tmp_path / "bad.jsonl").write_text('{"problem_id": "a", "problem": "x", "task": "t2c", "extra": 1}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl row 1: extra"):
        read_sft_rows(str(tmp_path / "bad.jsonl"))
    # clustering reads the problem part only, of any row
    assert [p.problem_id for p in read_sft_problems(str(tmp_path / "bad.jsonl"))] == ["a"]
    with pytest.raises(FileNotFoundError, match="SFT file not found"):
        read_sft_rows(str(tmp_path / "missing.jsonl"))
    assert isinstance(rows[0], SFTRow) and rows[0].agent == "reference"
