"""`bdc plan` through the CLI: the table, --json, --throughput, and exit 2 with the key path when a
request fits no node type of the cluster file."""

import json

import yaml
from typer.testing import CliRunner

from bdc_ray.cli import app
from tests.conftest import ROOT

runner = CliRunner()
CLUSTER = ROOT / "cluster"


def test_plan_prints_the_stages_on_a_cluster_file():
    result = runner.invoke(app, ["plan", "--config", str(CLUSTER / "ray_config.yaml"), "--cluster", str(CLUSTER / "aws.yaml")])
    assert result.exit_code == 0, result.output
    for text in ("Ray Train worker of an expert run", "8 x gpu, 4 x cpu", "GPU-hours", "vllm_generation_gpu",
                 "models.agents.0.resources", "How each stage's time is estimated"):
        assert text in result.output, text
    assert "cost" not in result.output.lower(), "no cluster file gives a price: no cost line"


def test_plan_json_for_scripts_and_without_a_cluster_file():
    result = runner.invoke(app, ["plan", "--config", str(ROOT / "ray_config.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["cluster"] is None and [s["name"] for s in plan["stages"]] == [
        "data", "boost", "disentangle", "customize", "eval", "serve"]
    assert any(n.startswith("no cluster file: node counts not computed") for n in plan["notes"])


def test_a_request_that_fits_no_node_type_exits_2_naming_its_key(tmp_path):
    config = yaml.safe_load((CLUSTER / "ray_config.yaml").read_text())
    config["stages"]["disentangle"]["experts"]["scaling"]["resources_per_worker"] = {"CPU": 4, "GPU": 2, "gpu_node": 0.01}
    greedy = tmp_path / "greedy.yaml"
    greedy.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["plan", "--config", str(greedy), "--cluster", str(CLUSTER / "aws.yaml")])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert (f"stages.disentangle.experts.scaling.resources_per_worker: {{CPU: 4, GPU: 2, gpu_node: 0.01}} fits no node "
            f"type of {CLUSTER / 'aws.yaml'} (head: {{CPU: 0, GPU: 0}}, cpu: {{CPU: 16, cpu_node: 1}}, "
            f"gpu: {{CPU: 8, GPU: 1, gpu_node: 1}})") in said, said


def test_a_file_that_is_no_cluster_or_no_throughput_table_exits_2(tmp_path):
    config = str(CLUSTER / "ray_config.yaml")
    not_a_cluster = runner.invoke(app, ["plan", "--config", config, "--cluster", config])
    assert not_a_cluster.exit_code == 2 and "neither a Ray cluster-launcher config" in not_a_cluster.output
    figures = tmp_path / "figures.yaml"
    figures.write_text("tokens_per_second: 5\n")
    bad = runner.invoke(app, ["plan", "--config", config, "--throughput", str(figures)])
    assert bad.exit_code == 2 and "tokens_per_second: unknown figure" in bad.output
