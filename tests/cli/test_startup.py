"""What the often-run commands import: `bdc --help`, `bdc config check`, `bdc plan` and `bdc eval`
on one machine never load torch, transformers or Ray (each is a fresh interpreter, as a user runs it)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, ROOT

HEAVY = ("torch", "transformers", "peft", "ray", "sklearn", "matplotlib", "fastapi", "deepspeed")

PROBE = """
import json, sys
watched = json.loads(sys.argv[2])
sys.argv = ["bdc", *json.loads(sys.argv[1])]
from bdc_ray.cli import app
code = None
try:
    app()
except SystemExit as done:
    code = done.code
heavy = sorted(m for m in watched if m in sys.modules)
print("\\nPROBE " + json.dumps({"code": code, "heavy": heavy}))
"""


def _run(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("PROBE ")]
    assert line, done.stdout + done.stderr
    return json.loads(line[-1].removeprefix("PROBE "))


@pytest.mark.parametrize(
    "args",
    [["--help"], ["config", "check", "ray_config.yaml"], ["report", "--help"], ["serve", "--help"],
     ["plan", "--config", "ray_config.yaml", "--cluster", "cluster/aws.yaml"]],
    ids=["help", "config-check", "report-help", "serve-help", "plan"],
)
def test_often_run_commands_load_no_heavy_library(args):
    seen = _run(args)
    assert seen["code"] in (0, None) and seen["heavy"] == []


def test_deepspeed_is_loaded_only_to_check_zero_options_a_config_sets():
    """cluster/ray_config.yaml sets `stages.disentangle.experts.zero`, which only DeepSpeed's own
    schema can check at load: that config pays for the import, the embedded default does not."""
    seen = _run(["plan", "--config", "cluster/ray_config.yaml", "--cluster", "cluster/aws.yaml"])
    assert seen["code"] in (0, None) and "deepspeed" in seen["heavy"]


def test_eval_on_one_machine_loads_no_heavy_library(tmp_path):
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/23", "completion": "    return len(string)\n"}) + "\n")
    problems = FIXTURES / "humaneval" / "HumanEval-3.jsonl.gz"
    seen = _run(["eval", "-p", str(problems), "-s", str(samples), "--k", "1", "-o", str(tmp_path / "o")])
    assert seen["code"] in (0, None) and seen["heavy"] == []
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["pass@1"] == 1.0
