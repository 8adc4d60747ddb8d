"""`bdc eval` in this process and on Ray: the same verdicts, pass@1 and isolation.

The samples mix passes, wrong answers, crashes and a program that checks whether it can see
the project's files (it passes only where the sandbox hides them), on three HumanEval problems.
"""

import json

from typer.testing import CliRunner

from bdc_ray.cli import app
from tests.conftest import FIXTURES, ROOT, cluster_address

runner = CliRunner()
PROBLEMS = FIXTURES / "humaneval" / "HumanEval-3.jsonl.gz"
HIDDEN = ROOT / "pyproject.toml"
SAMPLES = [
    ("HumanEval/23", "    return len(string)\n"),
    ("HumanEval/23", "    return len(string) + 1\n"),
    ("HumanEval/23", "    raise ValueError('no')\n"),
    ("HumanEval/34", "    return sorted(set(l))\n"),
    ("HumanEval/34", "    return l\n"),
    ("HumanEval/0", f"    import os\n    assert not os.path.exists({str(HIDDEN)!r}), 'sees the project'\n"
                    "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n"),
]


def _eval(tmp_path, name: str, *extra: str) -> tuple[dict, list[dict], str]:
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in SAMPLES))
    out = tmp_path / name
    result = runner.invoke(app, ["eval", "-p", str(PROBLEMS), "-s", str(samples), "--k", "1,2", "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return json.loads((out / "summary.json").read_text()), records, result.output


def test_in_process_and_ray_paths_agree_sample_by_sample(ray_local, tmp_path):
    local, local_records, local_out = _eval(tmp_path, "local")
    on_ray, ray_records, ray_out = _eval(tmp_path, "ray", "--address", cluster_address())
    assert "scored in this process" in local_out and "scored on Ray" in ray_out
    verdicts = [(r["task_id"], r["sample_index"], r["status"], r["pass_rate"]) for r in local_records]
    assert verdicts == [(r["task_id"], r["sample_index"], r["status"], r["pass_rate"]) for r in ray_records]
    assert [v[2] for v in verdicts] == ["passed", "failed", "error", "passed", "failed", "passed"]
    assert local["pass@1"] == on_ray["pass@1"] == (1 / 3 + 1 / 2 + 1) / 3
    assert local["status_counts"] == on_ray["status_counts"]


def test_the_in_process_pool_hides_the_host_like_the_ray_actor(tmp_path):
    """The last sample would fail wherever it could read the project; with no sandbox it would."""
    summary, records, output = _eval(tmp_path, "local")
    assert "isolation namespaces" in output or "isolation userns" in output, output
    assert records[-1]["status"] == "passed" and HIDDEN.exists()
