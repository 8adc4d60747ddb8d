"""The explorer page's data and HTML from real trace records (pure Python; the browser test opens it)."""

import json
import re

import pytest

from bdc_ray import storage
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.report import build_report
from bdc_ray.report.explorer import embed_json, explorer_data, explorer_html, outcome, write_trace_page
from tests.report.explorer_runs import HOSTILE, fake_records, write_traces

def test_page_data_classifies_problems_and_keeps_each_tree():
    records = fake_records()
    assert [outcome(r) for r in records] == ["root", "tree", "unsolved", "unsolved"]
    data = explorer_data(records, "t", report_link="report.md")
    assert data["report"] == "report.md" and data["families"] == ["arith", "io"] and data["agents"] == ["A", "B"]
    by_id = {p["id"]: p for p in data["problems"]}
    assert list(by_id) == ["p/none", "p/old", "p/root", "p/tree"]
    solved = by_id["p/tree"]
    assert solved["outcome"] == "tree" and solved["verified"] and solved["best_agent"] in ("A", "B")
    nodes = solved["tree"]["nodes"]
    assert nodes == records[1]["tree"]["nodes"] and len(nodes) == records[1]["tree_size"]
    best = nodes[solved["tree"]["best"]]
    assert best["thought"] == "add one" and nodes[best["parent"]]["thought"] == "double"
    assert records[1]["best_program"] in [s["program"] for s in best["simulations"]]
    # Thoughts below another thought, and how many of them another agent proposed.
    deeper = [n for n in nodes if n["parent"] not in (None, 0)]
    crossing = [n for n in deeper if n["agent"] != nodes[n["parent"]]["agent"]]
    assert crossing and (solved["extends_other_agent"], solved["deeper_thoughts"]) == (len(crossing), len(deeper))
    old = by_id["p/old"]
    assert old["tree"] is None and old["evaluations"] == records[2]["evaluations"] and old["extends_other_agent"] is None
    assert "evaluations" not in solved  # the tree already holds every program


def test_html_is_self_contained_and_embeds_hostile_text_inertly():
    records = fake_records()
    assert any(n["thought"] == HOSTILE for r in records if r.get("tree") for n in r["tree"]["nodes"])
    data = explorer_data(records, "Trees <of> run", report_link="report.md")
    page = explorer_html(data)
    assert "</script><script>alert(1)" not in page and "<!-- &" not in page
    assert page.count("<script") == 2 and page.count("</script>") == 2  # the data and the explorer, nothing injected
    embedded = re.search(r'<script id="bdc-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    assert json.loads(embedded) == data and embedded == embed_json(data)
    assert "<title>Trees &lt;of&gt; run</title>" in page and "__JS__" not in page and "__DATA__" not in page
    assert "default-src 'none'" in page  # the page's own policy forbids every fetch
    for external in (r"<script[^>]*\ssrc=", r"<link\b", r"@import", r"url\(", r"""href=["']?(https?:)?//"""):
        assert not re.search(external, page, re.I), external


def test_report_links_its_boost_plot_to_the_explorer_and_back(tmp_path):
    run_dir = str(tmp_path / "run")
    write_traces(run_dir, fake_records())
    text = storage.read_text(build_report(RunLayout(run_dir)))
    assert "[![tree statistics](boost_tree.png)](explorer.html)" in text
    page = (tmp_path / "run" / "report" / "explorer.html").read_text()
    data = json.loads(re.search(r'type="application/json">(.*?)</script>', page, re.S).group(1))
    assert data["report"] == "report.md" and len(data["problems"]) == 4 and data["title"] == "Boost search trees: run"


def test_one_trace_file_page(tmp_path):
    record = fake_records()[1]
    trace = tmp_path / "abc.jsonl"
    storage.write_jsonl_atomic(str(trace), [record])
    written = write_trace_page(str(trace))
    assert written == str(tmp_path / "abc.html")
    page = (tmp_path / "abc.html").read_text()
    data = json.loads(re.search(r'type="application/json">(.*?)</script>', page, re.S).group(1))
    assert data["report"] is None and [p["id"] for p in data["problems"]] == ["p/tree"]
    assert write_trace_page(str(trace), str(tmp_path / "out" / "x.html")) == str(tmp_path / "out" / "x.html")
    (tmp_path / "bad.jsonl").write_text('{"problem_id": "x"}\n')
    with pytest.raises(ValueError, match="not a Boost trace record"):
        write_trace_page(str(tmp_path / "bad.jsonl"))
