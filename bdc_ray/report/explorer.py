"""The tree explorer: one self-contained HTML page that lists Boost's problems and draws their trees.

The page is written beside report.md by `bdc report`, for one trace file by `bdc boost show`,
and served by the Serve app under /runs/<run>/. It must open anywhere, years later, offline:
the script, the style and the data are all inside the file (explorer_assets/ holds the script
and style, written for this project: plain JS and SVG, no library), and its Content-Security-
Policy forbids every fetch. Thoughts, programs and feedback are model output, so the data is
embedded as JSON with `<` escaped and the script inserts text with textContent only.

This module is the pure part: trace records -> page data -> HTML.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import Any, Iterable, Sequence

from bdc_ray import storage

PAGE = "explorer.html"
OUTCOMES = ("root", "tree", "unsolved")
REQUIRED = ("problem_id", "solved_public", "best_thoughts", "hidden_passed_all")
MARKERS = ("__TITLE__", "__CSS__", "__JS__", "__DATA__")


def outcome(record: dict[str, Any]) -> str:
    """Where the search found its answer: a program from the bare problem, one after thoughts, none.

    Judged, as the search itself judges, on the public tests; the hidden-test verdict is shown
    beside it (`verified`), since that is what decides whether the problem becomes SFT data.
    """
    if not record["solved_public"]:
        return "unsolved"
    return "tree" if record["best_thoughts"] else "root"


def _extends_other_agent(nodes: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """(thoughts whose parent thought another agent proposed, thoughts that have a parent thought)."""
    deeper = [n for n in nodes if n["parent"] is not None and nodes[n["parent"]]["agent"] is not None]
    return sum(n["agent"] != nodes[n["parent"]]["agent"] for n in deeper), len(deeper)


def problem_entry(record: dict[str, Any]) -> dict[str, Any]:
    """What the page shows of one trace record; a record from before traces kept their tree
    (no `tree` key) keeps its flat evaluations instead, so the page can still list its programs."""
    tree = record.get("tree")
    entry = {
        key: record.get(key)
        for key in ("problem_id", "family", "source", "difficulty", "prompt", "public_pass_rate", "hidden_pass_rate",
                    "hidden_status", "best_agent", "best_program", "rollouts", "tree_size",
                    "tree_depth", "llm_generations")
    }
    entry["id"] = entry.pop("problem_id")
    entry.update(outcome=outcome(record), verified=bool(record["hidden_passed_all"]), tree=None,
                 extends_other_agent=None, deeper_thoughts=None)
    if tree is None:
        entry["evaluations"] = record.get("evaluations", [])
        return entry
    entry["tree"] = {"best": tree["best"], "nodes": tree["nodes"]}
    entry["extends_other_agent"], entry["deeper_thoughts"] = _extends_other_agent(tree["nodes"])
    return entry


def explorer_data(records: Iterable[dict[str, Any]], title: str, report_link: str | None = None) -> dict[str, Any]:
    """The page's data: every problem (sorted by id), and the families and agents to filter by."""
    problems = sorted((problem_entry(r) for r in records), key=lambda p: p["id"])
    agents: set[str] = set()
    for p in problems:
        agents.update(p["llm_generations"] or {})
        agents.update(n["agent"] for n in (p["tree"] or {}).get("nodes", []) if n["agent"])
    return {
        "title": title,
        "report": report_link,
        "families": sorted({p["family"] for p in problems if p["family"]}),
        "agents": sorted(agents),
        "problems": problems,
    }


def _asset(name: str) -> str:
    return resources.files("bdc_ray.report").joinpath("explorer_assets", name).read_text(encoding="utf-8")


def embed_json(data: Any) -> str:
    """JSON that cannot end its <script> element or open a comment: every `<`, `>` and `&` escaped
    (also U+2028/9, which old parsers take for line ends)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def explorer_html(data: dict[str, Any]) -> str:
    """The whole page. Markers are replaced once each, in one pass, so no value (a program that
    happens to contain `__JS__`) is ever read as a marker."""
    values = {
        "__TITLE__": _escape_html(data["title"]),
        "__CSS__": _asset("explorer.css"),
        "__JS__": _asset("explorer.js"),
        "__DATA__": embed_json(data),
    }
    out, rest = [], _asset("page.html")
    while True:
        found = [(rest.find(m), m) for m in MARKERS if m in rest]
        if not found:
            return "".join(out) + rest
        at, marker = min(found)
        out += [rest[:at], values[marker]]
        rest = rest[at + len(marker):]


def write_explorer(records: Iterable[dict[str, Any]], path: str, title: str, report_link: str | None = None) -> str:
    """Write the page for `records` to `path` (local or object storage) atomically; returns `path`."""
    storage.write_text_atomic(path, explorer_html(explorer_data(records, title, report_link)))
    return path


def write_trace_page(trace: str, out: str | None = None) -> str:
    """The page of one trace file, written to `out` (default: beside it, `.html` for `.jsonl`);
    returns where it went (an absolute path when local). No link back: a lone trace has no report."""
    records = list(storage.read_jsonl(trace))
    if not records:
        raise ValueError("it holds no trace record")
    for line, record in enumerate(records, 1):
        missing = [k for k in REQUIRED if k not in record] if isinstance(record, dict) else list(REQUIRED)
        if missing:
            raise ValueError(f"record {line} is not a Boost trace record (no {', '.join(missing)})")
    target = out or (trace[: -len(".jsonl")] if trace.endswith(".jsonl") else trace) + ".html"
    if "://" not in target:
        target = os.path.abspath(target)
    names = ", ".join(r["problem_id"] for r in records[:3]) + (", ..." if len(records) > 3 else "")
    return write_explorer(records, target, f"Boost search tree: {names}")
