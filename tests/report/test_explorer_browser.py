"""The tree explorer in a real headless browser: Debian's Chromium driven by Playwright.

The page is built by `bdc report`'s own code from traces the real search wrote over agents that
write real Python (every program run in the real sandbox). The test selects problems through the
page's own controls, clicks nodes and checks what the page shows against the trace; it measures
how long a 200-node tree takes to render (printed, not asserted) and saves the screenshot in
docs/. Chromium comes from the OS packages (setup.sh installs it as root); Playwright never
downloads a browser of its own here.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest

from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.report import build_report
from tests.conftest import ROOT
from tests.report.explorer_runs import BIG, write_run, write_traces

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = ROOT / "docs" / "tree_explorer.png"
OLD = "demo/before-trees"


def _chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() == 0:
        pytest.fail(f"{CHROMIUM} is missing although this runs as root: ./setup.sh installs Debian's chromium")
    pytest.skip(f"BROWSER TEST NOT RUN: no {CHROMIUM} and not root to install it (apt-get install chromium)")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder with five searched problems (one of 257 nodes), one old-format trace, and its report."""
    from bdc_ray.sandbox import Sandbox

    run_dir = tmp_path_factory.mktemp("explorer") / "demo-run"
    with Sandbox(workers=2) as sandbox:
        records = write_run(str(run_dir), sandbox)
    old = {k: v for k, v in records[1].items() if k != "tree"}
    old["problem_id"] = OLD
    write_traces(str(run_dir), [old])
    build_report(RunLayout(str(run_dir)))
    return run_dir, {r["problem_id"]: r for r in [*records, old]}


@pytest.fixture(scope="module")
def browser(run):
    """Started after `run`: the search's asyncio.run cannot run inside Playwright's event loop."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(executable), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, run):
    context = browser.new_context(viewport={"width": 1400, "height": 820})
    tab = context.new_page()
    tab.errors, tab.requests = [], []
    tab.on("pageerror", lambda err: tab.errors.append(str(err)))
    tab.on("console", lambda msg: tab.errors.append(msg.text) if msg.type == "error" else None)
    tab.on("request", lambda req: tab.requests.append(req.url))
    tab.goto((run[0] / "report" / "explorer.html").as_uri())
    yield tab
    context.close()


def _choose(page, problem_id: str) -> None:
    page.click(f'#problems tbody tr[data-problem="{problem_id}"]')
    page.wait_for_function("id => window.bdcExplorer.lastRender && window.bdcExplorer.lastRender.problem === id "
                           "&& window.bdcExplorer.lastRender.frameMs !== null", arg=problem_id)


def test_choose_a_problem_click_nodes_and_read_them_against_the_trace(page, run):
    run_dir, records = run
    assert page.locator("#problems tbody tr").count() == len(records)
    page.select_option("#f-outcome", "tree")  # the filters list exactly the problems the tree solved
    tree_solved = sorted(p for p, r in records.items() if r["solved_public"] and r["best_thoughts"])
    assert sorted(page.locator("#problems tbody tr").evaluate_all("rows => rows.map(r => r.dataset.problem)")) == tree_solved
    page.select_option("#f-family", "list")
    assert page.locator("#problems tbody tr").count() == 1
    page.select_option("#f-family", "")

    record = records["demo/double-then-add"]
    nodes = record["tree"]["nodes"]
    _choose(page, "demo/double-then-add")
    assert page.locator("#tree g.node").count() == len(nodes)
    assert page.text_content("#summary h2") == "demo/double-then-add"
    # The page opens on the best program's node: its thought, and the chosen program among its simulations.
    best = nodes[record["tree"]["best"]]
    assert page.text_content("#details pre.thought") == best["thought"]
    assert page.text_content("#details .sim.best pre.program") == record["best_program"]
    assert page.locator("#tree g.node.on-best").count() == len(record["best_thoughts"]) + 1  # + the root

    # A refinement: its thought, its proposer, every program simulated from it, and the feedback behind it.
    refined = next(n for n in nodes if n["kind"] == "refine")
    page.click(f'#tree g.node[data-node="{refined["id"]}"]')
    assert page.text_content("#details pre.thought") == refined["thought"]
    assert f"proposed by {refined['agent']}" in page.text_content("#details h3")
    assert page.locator("#details pre.program").all_text_contents() == [s["program"] for s in refined["simulations"]]
    assert page.text_content("#details pre.feedback") == refined["feedback"]
    source = nodes[refined["refined_from"]]
    assert source["pruned"] and page.locator(f'#tree g.node.pruned[data-node="{source["id"]}"]').count() == 1
    assert "&node=" + str(refined["id"]) in page.url
    page.screenshot(path=str(SCREENSHOT))

    # Collapse a subtree with a double-click, expand everything again; zoom; colour by agent.
    parent = best["parent"]
    below, frontier = 0, [parent]
    while frontier:
        kids = [n["id"] for n in nodes if n["parent"] in frontier]
        below, frontier = below + len(kids), kids
    page.dblclick(f'#tree g.node[data-node="{parent}"]')
    assert page.locator("#tree g.node").count() == len(nodes) - below
    assert page.locator("#tree text.more").all_text_contents() == [f"+{below} hidden"]
    page.click("#b-expand")
    assert page.locator("#tree g.node").count() == len(nodes)
    before = page.get_attribute("#viewport", "transform")
    page.click("#b-in")
    assert page.get_attribute("#viewport", "transform") != before
    page.check("input[name=colour][value=agent]")
    fills = page.locator("#tree g.node .mark").evaluate_all("ms => ms.map(m => [m.parentNode.dataset.node, m.getAttribute('fill')])")
    by_agent = {}
    for node_id, fill in fills:
        by_agent.setdefault(nodes[int(node_id)]["agent"], set()).add(fill)
    assert all(len(f) == 1 for f in by_agent.values()) and len(set.union(*by_agent.values())) == len(by_agent)

    # A trace from before traces kept their tree: said so, with its programs.
    _choose(page, OLD)
    assert "not recorded" in page.text_content("#no-tree")
    assert page.locator("#no-tree pre.program").count() == len(records[OLD]["evaluations"])

    page.click("#links a")  # back to report.md
    assert page.url == (run_dir / "report" / "report.md").as_uri()
    assert page.errors == []
    assert {url.split("#")[0] for url in page.requests} == {(run_dir / "report" / n).as_uri() for n in ("explorer.html", "report.md")}
    assert SCREENSHOT.stat().st_size > 20_000


def test_a_200_node_tree_renders(page, run):
    _, records = run
    size = len(records[BIG[0]]["tree"]["nodes"])
    assert size >= 200
    timings = []
    for _ in range(3):  # alternate with a small tree so that each selection is a fresh render
        _choose(page, "demo/identity")
        _choose(page, BIG[0])
        timings.append(page.evaluate("JSON.stringify(window.bdcExplorer.lastRender)"))
    assert page.locator("#tree g.node").count() == size
    renders = [json.loads(t) for t in timings]
    script = statistics.median(r["scriptMs"] for r in renders)
    frame = statistics.median(r["frameMs"] for r in renders)
    each = ", ".join(f"{r['scriptMs']:.0f}/{r['frameMs']:.0f}" for r in renders)
    print(f"\n{size}-node tree in headless Chromium: script {script:.1f} ms, to the painted frame {frame:.1f} ms "
          f"(median of 3; script/frame each: {each} ms)")
    page.click("#b-depth1")
    assert page.locator("#tree g.node").count() < size
    page.click("#b-expand")
    assert page.locator("#tree g.node").count() == size and page.errors == []
