"""`bdc report RUN_DIR`: report.md and its plots, from whatever the run folder holds.

Each section reads one stage's artifacts; a stage that has not run yet gives a one-line note
instead of failing the report, so the same command documents a half-finished run.
"""

from __future__ import annotations

import importlib.metadata
import platform
from typing import Callable

from bdc_ray import storage
from bdc_ray.artifacts.clustering import CLUSTERS_FILE, read_clusters_json
from bdc_ray.artifacts.experts import load_manifest
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.artifacts.traces import read_traces
from bdc_ray.console import markdown_table
from bdc_ray.report import explorer, plots

PACKAGES = ("bdc-ray", "ray", "torch", "transformers", "peft", "deepspeed", "scikit-learn", "sentence-transformers")

Section = Callable[[RunLayout, str], str]
"""(the run folder, report_dir) -> Markdown; may write PNGs into report_dir."""


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _missing(what: str) -> str:
    return f"_{what} not found in this run folder: the stage has not run (yet)._\n"


def boost_section(layout: RunLayout, report_dir: str) -> str:
    traces = read_traces(layout.traces_dir)
    if not traces:
        return "## Boost\n\n" + _missing("boost/traces")
    n = len(traces)
    solved_public = sum(r.solved_public for r in traces)
    verified = sum(r.hidden_passed_all for r in traces)
    mean = lambda key: sum(getattr(r, key) for r in traces) / n  # noqa: E731
    at_root = sum(r.solved_by == "root" for r in traces)
    by_tree = sum(r.solved_by == "tree" for r in traces)
    table = markdown_table(
        ["problems", "solved (public)", "at the root", "by the tree", "verified (hidden)", "mean rollouts",
         "mean tree size", "mean depth"],
        [[n, f"{solved_public} ({pct(solved_public / n)})", f"{at_root} ({pct(at_root / n)})",
          f"{by_tree} ({pct(by_tree / n)})", f"{verified} ({pct(verified / n)})",
          f"{mean('rollouts'):.2f}", f"{mean('tree_size'):.2f}", f"{mean('tree_depth'):.2f}"]],
    )
    stats = plots.agent_stats(traces)
    agents = markdown_table(
        ["agent", "programs", "passing all public tests", "thoughts proposed", "won a verified problem"],
        [[a, s["programs"], pct(s["solve_rate"]), s["thoughts"], s["verified_wins"]] for a, s in stats.items()],
    )
    families = plots.by_family([(r.family, float(r.hidden_passed_all)) for r in traces])
    fam = markdown_table(["family", *families], [["verified", *(pct(v) for v in families.values())]])
    plots.boost_figure(traces, storage.join(report_dir, "boost_tree.png"))
    plots.anytime_figure(traces, storage.join(report_dir, "boost_anytime.png"))
    title = f"Boost search trees: {layout.root.rstrip('/').rsplit('/', 1)[-1]}"
    explorer.write_explorer([r.model_dump(mode="json") for r in traces], storage.join(report_dir, explorer.PAGE), title,
                            report_link="report.md")
    page = f"[every problem's search tree, one page]({explorer.PAGE})"
    return f"## Boost: MC-Tree-of-Agents\n\n{table}\n{agents}\n{fam}\n[![tree statistics](boost_tree.png)]({explorer.PAGE})\n\n![anytime curve](boost_anytime.png)\n\n{page}\n"


def disentangle_section(layout: RunLayout, report_dir: str) -> str:
    out = "## Disentangle: clusters and LoRA experts\n\n"
    if storage.exists(storage.join(layout.clusters_dir, CLUSTERS_FILE)):
        body = read_clusters_json(layout.clusters_dir)
        sizes = body.get("sizes", [])
        scores = ", ".join(f"K={k}: {v:.3f}" for k, v in sorted(body.get("silhouette", {}).items(), key=lambda kv: int(kv[0])))
        out += f"K = {body['k']} clusters of {sum(sizes)} problems (sizes {sizes}); embedder `{body.get('embedder')}`"
        out += f"; silhouette {scores}.\n\n" if scores else ".\n\n"
        png = layout.cluster_plot
        if storage.exists(png):
            fs, p = storage.filesystem(png)
            storage.write_bytes_atomic(storage.join(report_dir, "clusters.png"), fs.cat_file(p))
            out += "![cluster map](clusters.png)\n\n"
    else:
        out += _missing("disentangle/clusters/clusters.json")
    try:
        manifest = load_manifest(layout.experts_dir)
    except FileNotFoundError:
        return out + _missing("disentangle/experts/manifest.json")
    runs = [*manifest.experts, *([manifest.all_data] if manifest.all_data else [])]
    out += f"Base model `{manifest.base_model}`, LoRA r={manifest.lora.r}, alpha={manifest.lora.lora_alpha}, "
    out += f"targets {', '.join(manifest.lora.target_modules)}.\n\n"
    out += markdown_table(
        ["adapter", "cluster", "rows", "steps", "final loss", "resumed at", "samples/s"],
        [[e.name, getattr(e, "cluster", "-"), e.size, e.steps, f"{e.final_loss:.4f}" if e.final_loss is not None else "-",
          ",".join(map(str, e.resumed_from)) or "-", f"{e.samples_per_s:.1f}"] for e in runs],
    )
    if any(e.loss_curve for e in runs):
        plots.loss_curves({e.name: e.loss_curve for e in runs}, storage.join(report_dir, "expert_losses.png"),
                          "LoRA training loss (experts and the all-data baseline)")
        out += "\n![expert losses](expert_losses.png)\n"
    return out


def customize_section(layout: RunLayout, report_dir: str) -> str:
    out = "## Customize: the input-aware hypernetwork\n\n"
    best, results = layout.tune_best, layout.tune_results
    if not storage.exists(results):
        return out + ("Trained once without a search (no tune results).\n" if storage.exists(layout.hypernet_dir)
                      else _missing("customize/tune/results.jsonl"))
    rows = sorted(storage.read_jsonl(results), key=lambda r: r["best_val_loss"] if r["best_val_loss"] is not None else 1e9)
    out += markdown_table(
        ["trial", "lr", "hidden", "temperature", "weight decay", "layers", "best val loss", "first val loss", "stopped early"],
        [[r["trial_id"][-12:], f"{r['config']['lr']:.2e}", r["config"]["hidden"], r["config"]["temperature"],
          r["config"]["weight_decay"], r["config"]["layers"],
          f"{r['best_val_loss']:.4f}" if r["best_val_loss"] is not None else "-",
          f"{r['initial_val_loss']:.4f}" if r["initial_val_loss"] is not None else "-", r["stopped_early"]] for r in rows],
    )
    if storage.exists(best):
        out += f"\nBest configuration: `{storage.read_text(best).strip()}`\n"
    return out


def eval_section(layout: RunLayout, report_dir: str) -> str:
    from bdc_ray.heldout import SOLVER_KINDS

    out = "## Held-out evaluation: the student, its adapted solvers and the teachers\n\n"
    table = layout.heldout_table
    if not storage.exists(table):
        return out + _missing("eval/heldout/table.md")
    out += ("pass@1 (%) overall and per family, hidden and public tests of problems no stage trained on: `base` is "
            "the student, `teacher:<name>` each Boost agent prompted the same way (every model's own strength), "
            "then the paired differences between the student's solvers.\n\n")
    out += storage.read_text(table)
    fs, root = storage.filesystem(layout.heldout_root)
    summaries = [storage.read_json(fs.unstrip_protocol(p)) for p in fs.glob(f"{root}/*/*/summary.json")]
    order = {kind: i for i, kind in enumerate(SOLVER_KINDS)}  # bars in the table's order: base first
    summaries.sort(key=lambda s: (order.get(s["solver"], len(order)), s["solver"]))
    for split in sorted({s["split"] for s in summaries}):
        rows = {s["solver"]: {f: g.get("pass@1", 0.0) for f, g in s.get("by_family", {}).items()}
                for s in summaries if s["split"] == split}
        for name, values in rows.items():
            values["all"] = next(s.get("pass@1", 0.0) for s in summaries if s["split"] == split and s["solver"] == name)
        png = f"ablation_{split}.png"
        plots.grouped_bars(rows, storage.join(report_dir, png), f"pass@1 per family, {split}")
        out += f"\n![pass@1 per family, {split}]({png})\n"
    return out


def routing_section(layout: RunLayout, report_dir: str) -> str:
    """Per cluster, its expert against the all-data LoRA on the held-out problems routed to it (where
    one adapter for every type gives way to one per type), and the hypernetwork's weights per family."""
    from collections import Counter, defaultdict

    from bdc_ray.artifacts.clustering import load_clustering
    from bdc_ray.artifacts.sft import read_sft_rows
    from bdc_ray.heldout import per_problem, solver_dir

    out = "## Routing: each expert on its cluster, and the hypernetwork's weights per family\n\n"
    split = "heldout"
    hard = storage.join(solver_dir(layout, "hard_routing", split), "samples.jsonl")
    if not storage.exists(hard):
        return out + _missing("eval/heldout/hard_routing")
    routed = {s["task_id"]: s["expert"] for s in storage.read_jsonl(hard)}
    family = {r["task_id"]: r["family"] for r in storage.read_jsonl(storage.join(solver_dir(layout, "base", split), "results.jsonl"))}
    passed = {name: per_problem(layout, name, split) for name in ("base", "all_data", "hard_routing")}
    manifest = load_manifest(layout.experts_dir)
    clustering = load_clustering(layout.clusters_dir)
    family_of = {r.problem_id: r.family for r in read_sft_rows(layout.sft_file)}
    rows = []
    for expert in manifest.experts:
        trained = Counter(family_of.get(i) for i, c in zip(clustering.ids, clustering.labels.tolist()) if c == expert.cluster)
        top, count = trained.most_common(1)[0] if trained else ("-", 0)
        mine = [p for p, e in routed.items() if e == expert.name]
        rate = lambda name: pct(sum(passed[name][p] for p in mine) / len(mine)) if mine else "-"  # noqa: E731
        rows.append([expert.name, expert.size, f"{top} ({pct(count / max(1, sum(trained.values())))})", len(mine),
                     rate("base"), rate("all_data"), rate("hard_routing")])
    out += (f"Each held-out problem goes to the expert of its nearest centroid (hard routing); on those problems, "
            f"pass@1 of the base, the all-data LoRA and that expert ({split}).\n\n")
    out += markdown_table(["expert", "train rows", "top family", "held-out routed", "base", "all-data LoRA", "expert"], rows)
    customized = storage.join(solver_dir(layout, "customized", split), "samples.jsonl")
    if storage.exists(customized):
        shares: dict[str, list[dict[str, float]]] = defaultdict(list)
        for s in storage.read_jsonl(customized):
            shares[family.get(s["task_id"], "?")].append(s["shares"])
        mean = {f: {e: sum(v[e] for v in vs) / len(vs) for e in vs[0]} for f, vs in sorted(shares.items())}
        plots.heatmap(mean, storage.join(report_dir, "routing_heatmap.png"),
                      "the hypernetwork's weight per expert, mean over each family's held-out problems", "share")
        out += "\n![routing weights per family](routing_heatmap.png)\n"
    return out


def reference_section(layout: RunLayout, report_dir: str) -> str:
    path = layout.reference_table
    if not storage.exists(path):
        return "## Reference solutions through the sandbox\n\n" + _missing("eval/reference/table.md")
    return "## Reference solutions through the sandbox\n\n" + storage.read_text(path)


def setup_section(layout: RunLayout, report_dir: str) -> str:
    config_path = layout.config_file
    config = storage.read_text(config_path) if storage.exists(config_path) else "(config.yaml missing)\n"
    table = markdown_table(["package", "version"], [[k, v] for k, v in versions().items()])
    return f"## Configuration and versions\n\n{table}\n<details><summary>config.yaml</summary>\n\n```yaml\n{config}```\n</details>\n"


SECTIONS: list[Section] = [
    eval_section, routing_section, boost_section, disentangle_section, customize_section, reference_section, setup_section,
]


def build_report(layout: RunLayout, sections: list[Section] | None = None) -> str:
    """Write `<run>/report/report.md` (and its PNGs); returns the Markdown path."""
    report_dir = layout.report_dir
    storage.makedirs(report_dir)
    parts = [f"# bdc-ray run report\n\nRun folder: `{layout.root}`\n"]
    parts += [section(layout, report_dir) for section in (sections or SECTIONS)]
    path = storage.join(report_dir, "report.md")
    storage.write_text_atomic(path, "\n".join(parts))
    return path
