import gzip
import json
import logging
import shutil
from pathlib import Path

import pytest

from bdc_ray.problems.loaders import (
    FORMATS,
    LoadReport,
    detect_format,
    load_problems,
    read_problems_jsonl,
    write_problems_jsonl,
)
from bdc_ray.problems.split import split_tests
from bdc_ray.problems.types import AssertTest, CallTest, StdioTest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HUMANEVAL = FIXTURES / "humaneval" / "HumanEval-3.jsonl.gz"
MBPP_SANITIZED = FIXTURES / "mbpp" / "sanitized-mbpp-3.json"
MBPP_ORIGINAL = FIXTURES / "mbpp" / "mbpp-original-3.jsonl"
APPS = FIXTURES / "apps" / "apps-5.jsonl"
CC_DICTS = FIXTURES / "codecontests" / "alphacodium-example.jsonl"
CC_REPR = FIXTURES / "codecontests" / "codecontests-repr.jsonl"
ALL_FIXTURES = [HUMANEVAL, MBPP_SANITIZED, MBPP_ORIGINAL, APPS, CC_DICTS, CC_REPR]
CC_NAME = "Sorting Andi and Budi Books Problem"


def load_clean(path, format=None):
    problems, report = load_problems(path, format)
    assert report.errors == [], report.errors
    assert report.loaded == len(problems) and report.skipped == 0
    return problems, report


def by_id(problems):
    return {p.id: p for p in problems}


def apps_records():
    return [json.loads(line) for line in APPS.read_text().splitlines()]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# --- HumanEval -------------------------------------------------------------------------


def test_humaneval_gz():
    problems, report = load_clean(HUMANEVAL)
    assert report.format == "humaneval"
    assert [p.id for p in problems] == ["HumanEval/0", "HumanEval/23", "HumanEval/34"]
    assert [p.entry_point for p in problems] == ["has_close_elements", "strlen", "unique"]
    for p in problems:
        assert p.source == "humaneval" and p.completion_mode == "append"
        assert p.public_tests == [] and len(p.hidden_tests) == 1
        (test,) = p.hidden_tests
        assert isinstance(test, AssertTest) and test.setup == ""
        assert "def check(candidate):" in test.code
        assert test.code.endswith(f"\ncheck({p.entry_point})\n")
        (solution,) = p.reference_solutions
        assert p.program_from(solution).startswith(p.prompt)
        assert f"def {p.entry_point}(" in p.prompt


def test_humaneval_plain_jsonl_matches_gz(tmp_path):
    plain = tmp_path / "HumanEval.jsonl"
    with gzip.open(HUMANEVAL, "rb") as src, plain.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    assert load_clean(plain)[0] == load_clean(HUMANEVAL)[0]


# --- MBPP ------------------------------------------------------------------------------


def test_mbpp_sanitized_json_array():
    problems, report = load_clean(MBPP_SANITIZED)
    assert report.format == "mbpp"
    ps = by_id(problems)
    assert list(ps) == ["2", "6", "82"]
    assert {i: p.entry_point for i, p in ps.items()} == {
        "2": "similar_elements",
        "6": "differ_At_One_Bit_Pos",  # defined after a helper, called by the asserts
        "82": "volume_sphere",
    }
    assert {i: len(p.tests) for i, p in ps.items()} == {"2": 3, "6": 6, "82": 3}
    assert all(isinstance(t, AssertTest) and t.code.startswith("assert ") for p in problems for t in p.tests)
    assert {t.setup for t in ps["82"].tests} == {"import math"}
    assert {t.setup for t in ps["2"].tests} == {""}
    assert ps["2"].reference_solutions[0].startswith("def similar_elements(")
    assert all(p.completion_mode == "program" and p.source == "mbpp" for p in problems)


def test_mbpp_prompt_shows_the_task_and_a_public_test_only():
    for p in load_clean(MBPP_SANITIZED)[0] + load_clean(MBPP_ORIGINAL)[0]:
        assert p.prompt.startswith("Write a ")
        assert p.public_tests[0].code in p.prompt
        assert p.entry_point in p.prompt
        assert not any(t.code in p.prompt for t in p.hidden_tests)


def test_mbpp_single_assert_is_hidden_and_the_prompt_names_the_function(tmp_path):
    record = json.loads(MBPP_ORIGINAL.read_text().splitlines()[0])
    record["test_list"] = record["test_list"][:1]
    (p,), _ = load_clean(write_jsonl(tmp_path / "mbpp.jsonl", [record]))
    assert p.public_tests == [] and len(p.hidden_tests) == 1
    assert "`similar_elements`" in p.prompt and "assert" not in p.prompt


def test_mbpp_original_jsonl():
    problems, report = load_clean(MBPP_ORIGINAL)
    assert report.format == "mbpp"
    ps = by_id(problems)
    assert list(ps) == ["2", "3", "82"]
    assert [p.entry_point for p in problems] == ["similar_elements", "is_not_prime", "volume_sphere"]
    assert [len(p.tests) for p in problems] == [3, 3, 3]
    assert {t.setup for t in ps["82"].tests} == {"import math"}
    assert ps["3"].metadata == {"challenge_test_list": ["assert is_not_prime(37) == False"]}
    sanitized = by_id(load_clean(MBPP_SANITIZED)[0])
    assert ps["2"] == sanitized["2"] and ps["82"] == sanitized["82"]


def test_mbpp_json_gz_array(tmp_path):
    packed = tmp_path / "sanitized-mbpp.json.gz"
    packed.write_bytes(gzip.compress(MBPP_SANITIZED.read_bytes()))
    assert detect_format(packed) == "mbpp"
    assert load_clean(packed)[0] == load_clean(MBPP_SANITIZED)[0]


# --- APPS ------------------------------------------------------------------------------


def test_apps_ids_kinds_and_counts():
    problems, report = load_clean(APPS)
    assert report.format == "apps"
    ps = by_id(problems)
    assert list(ps) == ["111", "2287", "4184", "2407", "2303"]
    assert {i: len(p.tests) for i, p in ps.items()} == {"111": 1, "2287": 3, "4184": 8, "2407": 1, "2303": 5}
    for i in ("111", "2287"):
        assert all(isinstance(t, StdioTest) for t in ps[i].tests) and ps[i].entry_point is None
    assert ps["111"].public_tests == [] and len(ps["111"].hidden_tests) == 1
    assert [p.difficulty for p in problems] == ["interview", "competition", "introductory", "introductory", None]
    assert ps["111"].metadata == {"url": "https://codeforces.com/problemset/problem/838/A"}
    assert all(len(p.reference_solutions) == 1 for p in problems)


def test_apps_call_based_with_class_solution():
    ps = by_id(load_clean(APPS)[0])
    p = ps["2303"]
    assert p.starter_code.lstrip().startswith("class Solution:\n    def reverseWords(self, s: str) -> str:")
    assert p.entry_point == "reverseWords"
    assert all(isinstance(t, CallTest) and t.fn_name == "reverseWords" for t in p.tests)
    assert CallTest(fn_name="reverseWords", args=["the sky is blue"], expected="blue is sky the", source="apps") in p.tests
    plain_function = ps["4184"]
    assert plain_function.starter_code == "def is_prime(n):\n\t"
    assert CallTest(fn_name="is_prime", args=[2], expected=[True], source="apps") in plain_function.tests


def test_apps_stdio_lists_of_lines_are_joined(tmp_path):
    record = apps_records()[0]
    record["input_output"] = json.dumps({"inputs": [["3", "1 2 3"]], "outputs": [["6"]]})
    (p,), _ = load_clean(write_jsonl(tmp_path / "apps.jsonl", [record]))
    assert p.tests == [StdioTest(input="3\n1 2 3", output="6", source="apps")]


def test_apps_records_without_tests_are_skipped(tmp_path):
    empty, no_inputs, good = apps_records()[:3]
    empty["input_output"] = ""
    no_inputs["input_output"] = json.dumps({"inputs": [], "outputs": []})
    path = write_jsonl(tmp_path / "apps.jsonl", [empty, no_inputs, good])
    problems, report = load_problems(path)
    assert [p.id for p in problems] == [str(good["problem_id"])]
    assert [(e.line, "no tests" in e.reason) for e in report.errors] == [(1, True), (2, True)]


# --- CodeContests ----------------------------------------------------------------------


def test_codecontests_dict_fields_keep_the_dataset_split():
    (p,), report = load_clean(CC_DICTS)
    assert report.format == "codecontests"
    assert p.id == CC_NAME and p.source == "codecontests" and p.completion_mode == "program"
    assert p.public_tests == [StdioTest(input="5 2\nAA\nAB\nBB\nBA\nAZ\n", output="5 2 1 3 4 \n", source="codecontests")]
    assert len(p.hidden_tests) == 4 and all(isinstance(t, StdioTest) for t in p.hidden_tests)
    assert p.reference_solutions == [] and p.difficulty is None
    assert p.prompt.startswith("Andi and Budi were given")


def test_codecontests_repr_strings_and_python3_solutions():
    (p,), _ = load_clean(CC_REPR)
    (dicts,), _ = load_clean(CC_DICTS)
    assert p.public_tests == dicts.public_tests
    assert len(p.hidden_tests) == 5  # 2 private + 3 generated
    assert p.hidden_tests[:4] == dicts.hidden_tests
    (solution,) = p.reference_solutions  # the C++ one (language 2) is dropped
    assert solution.startswith("import sys")
    assert p.difficulty == "7"


def test_codecontests_without_public_tests_falls_back_to_split(tmp_path):
    record = json.loads(CC_DICTS.read_text())
    record["public_tests"] = {"input": [], "output": []}
    (p,), _ = load_clean(write_jsonl(tmp_path / "cc.jsonl", [record]))
    generated = record["generated_tests"]
    all_tests = [StdioTest(input=i, output=o, source="codecontests") for i, o in zip(generated["input"], generated["output"])]
    assert (p.public_tests, p.hidden_tests) == split_tests(CC_NAME, all_tests)
    assert p.public_tests and p.hidden_tests


def test_codecontests_without_kept_back_tests_falls_back_to_split(tmp_path):
    record = json.loads(CC_DICTS.read_text())
    record["public_tests"] = record.pop("generated_tests")
    record["private_tests"] = None
    (p,), _ = load_clean(write_jsonl(tmp_path / "cc.jsonl", [record]))
    assert len(p.public_tests) == 2 and len(p.hidden_tests) == 2


# --- detection, errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path, expected",
    [
        (HUMANEVAL, "humaneval"),
        (MBPP_SANITIZED, "mbpp"),
        (MBPP_ORIGINAL, "mbpp"),
        (APPS, "apps"),
        (CC_DICTS, "codecontests"),
        (CC_REPR, "codecontests"),
    ],
)
def test_detect_format(path, expected):
    assert detect_format(path) == expected
    assert detect_format(str(path)) == expected


def test_detection_reads_content_not_suffix(tmp_path):
    # Hugging Face's Dataset.to_json writes JSON lines under a .json name.
    path = tmp_path / "apps.json"
    shutil.copy(APPS, path)
    assert detect_format(path) == "apps"
    assert len(load_clean(path)[0]) == 5


def test_detection_skips_leading_malformed_lines(tmp_path):
    path = tmp_path / "apps.jsonl"
    path.write_text("this is not json\n[1, 2]\n" + APPS.read_text())
    assert detect_format(path) == "apps"


def test_unknown_format_names_keys_and_formats(tmp_path):
    path = write_jsonl(tmp_path / "other.jsonl", [{"question_id": 1, "body": "x"}])
    with pytest.raises(ValueError) as err:
        load_problems(path)
    message = str(err.value)
    assert "'body'" in message and "'question_id'" in message
    assert all(name in message for name in FORMATS)
    with pytest.raises(ValueError, match="unknown format 'leetcode'"):
        load_problems(APPS, format="leetcode")
    with pytest.raises(ValueError, match="no JSON object"):
        detect_format(write_jsonl(tmp_path / "numbers.jsonl", [1, 2]))


def test_malformed_lines_are_reported_and_the_rest_load(tmp_path, caplog):
    good = APPS.read_text().splitlines()
    bad_io = dict(apps_records()[1], problem_id=9001, input_output='{"inputs": [')
    lines = [
        good[0],
        "{not json",
        good[1],
        json.dumps({"problem_id": 9000, "question": "no tests here"}),
        json.dumps(bad_io),
        "",
        "[1, 2, 3]",
        good[2],
        good[0],
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="bdc_ray.problems.loaders"):
        problems, report = load_problems(path)
    assert isinstance(report, LoadReport) and report.format == "apps"
    assert [p.id for p in problems] == ["111", "2287", "4184"]
    assert (report.loaded, report.skipped) == (3, 5)
    assert [e.where for e in report.errors] == [f"{path}:{n}" for n in (2, 4, 5, 7, 9)]
    reasons = [e.reason for e in report.errors]
    assert "not valid JSON" in reasons[0]
    assert "missing keys: input_output" in reasons[1]
    assert "input_output is not valid JSON" in reasons[2]
    assert "not a JSON object" in reasons[3]
    assert f"duplicate id '111' (first at {path}:1)" in reasons[4]
    for error in report.errors:
        assert str(error) in caplog.text


def test_malformed_array_element_reports_its_index(tmp_path):
    records = json.loads(MBPP_SANITIZED.read_text())
    del records[1]["test_list"]
    path = tmp_path / "mbpp.json"
    path.write_text(json.dumps(records))
    problems, report = load_problems(path)
    assert [p.id for p in problems] == ["2", "82"]
    assert [str(e) for e in report.errors] == [f"{path}:[1]: missing keys: test_list"]


def test_broken_json_array_is_an_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(MBPP_SANITIZED.read_text()[:-10])
    with pytest.raises(ValueError, match="not a valid JSON array"):
        load_problems(path)


def test_forcing_the_wrong_format_reports_every_record():
    problems, report = load_problems(HUMANEVAL, format="apps")
    assert problems == [] and report.skipped == 3
    assert all("missing keys: problem_id, question, input_output" == e.reason for e in report.errors)


# --- split and the project's own format ------------------------------------------------


def test_loading_is_deterministic_with_both_sides_filled():
    for path in ALL_FIXTURES:
        problems = load_clean(path)[0]
        assert problems == load_clean(path)[0]
        for p in problems:
            if len(p.tests) >= 2:
                assert p.public_tests and p.hidden_tests, p.id


def test_loaders_use_the_shared_split():
    for record, p in zip(json.loads(MBPP_SANITIZED.read_text()), load_clean(MBPP_SANITIZED)[0]):
        setup = "\n".join(record["test_imports"])
        tests = [AssertTest(code=a, setup=setup, source="mbpp") for a in record["test_list"]]
        assert (p.public_tests, p.hidden_tests) == split_tests(p.id, tests)
    for record, p in zip(apps_records(), load_clean(APPS)[0]):
        io = json.loads(record["input_output"])
        pairs = zip(io["inputs"], io["outputs"])
        if io.get("fn_name"):
            tests = [CallTest(fn_name=io["fn_name"], args=i, expected=o, source="apps") for i, o in pairs]
        else:
            tests = [StdioTest(input=i, output=o, source="apps") for i, o in pairs]
        assert (p.public_tests, p.hidden_tests) == split_tests(p.id, tests)


def test_bdc_round_trip(tmp_path):
    # One file per format: ids are unique within a benchmark, and a bdc file must not repeat one.
    problems = [p for path in (HUMANEVAL, MBPP_SANITIZED, APPS, CC_REPR) for p in load_clean(path)[0]]
    path = tmp_path / "out" / "problems.jsonl"
    assert write_problems_jsonl(path, problems) == len(problems)
    assert detect_format(path) == "bdc"
    assert read_problems_jsonl(path) == problems
    reloaded, report = load_clean(path)
    assert reloaded == problems and report.format == "bdc"


def test_bdc_round_trip_through_an_fsspec_url():
    problems = load_clean(APPS)[0]
    url = "memory://bdc-loader-test/problems.jsonl"
    write_problems_jsonl(url, problems)
    assert read_problems_jsonl(url) == problems


def test_bdc_reader_is_strict(tmp_path):
    path = tmp_path / "problems.jsonl"
    write_problems_jsonl(path, load_clean(APPS)[0])
    broken = {"id": "x", "source": "apps", "prompt": "p", "public_tests": [{"kind": "stdio"}]}
    path.write_text(path.read_text() + json.dumps(broken) + "\n")
    with pytest.raises(ValueError, match=r"problems.jsonl:6"):
        read_problems_jsonl(path)


def test_bdc_writer_refuses_compressed_names(tmp_path):
    with pytest.raises(ValueError, match="uncompressed"):
        write_problems_jsonl(tmp_path / "problems.jsonl.gz", [])
