// The Boost tree explorer (bdc-ray). Plain JS + SVG, no library, no network.
// Every text from a trace (thoughts, programs, feedback) is written LLM output: it goes into the
// page through textContent only, never as HTML.
(() => {
  "use strict";
  const DATA = JSON.parse(document.getElementById("bdc-data").textContent);
  const SVG_NS = "http://www.w3.org/2000/svg"; // the SVG namespace name, not a resource
  const LEVEL = 230; // px between depths (left to right)
  const ROW = 22; // px between leaves (top to bottom)
  const LABEL_CHARS = 30;
  const READABLE_ZOOM = 0.65; // below this labels are too small to read
  const PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"];
  const OUTCOME_LABEL = { root: "solved at the root", tree: "solved by the tree", unsolved: "unsolved" };

  const $ = (id) => document.getElementById(id);
  const svg = $("tree");
  const viewport = $("viewport");
  const byId = new Map(DATA.problems.map((p) => [p.id, p]));
  const agentIndex = new Map(DATA.agents.map((a, i) => [a, i]));

  const state = {
    problem: null, // the chosen problem's entry
    node: null, // the selected node id
    collapsed: new Set(),
    colour: "value",
    hidePruned: false,
    view: { k: 1, x: 20, y: 20 },
    lastRender: null,
    focus: null, // where a large tree opens: the best program's node
    bounds: null,
  };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function sv(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  const pct = (x) => (x === null || x === undefined ? "-" : `${(100 * x).toFixed(1)}%`);
  const num = (x) => (x === null || x === undefined ? "-" : Number(x).toFixed(3));
  const short = (t) => (t.length > LABEL_CHARS ? t.slice(0, LABEL_CHARS - 1) + "\u2026" : t);

  function valueColour(v) {
    if (v === null || v === undefined) return "#c3c8d0";
    const hue = Math.round(120 * Math.max(0, Math.min(1, v)));
    return `hsl(${hue}, 62%, ${hue > 90 ? 37 : 47}%)`;
  }

  function agentColour(agent) {
    if (agent === null) return "#3b4556";
    return PALETTE[(agentIndex.get(agent) ?? 0) % PALETTE.length];
  }

  // -- the problem list --------------------------------------------------------------------

  function fillSelect(select, label, values, names) {
    select.append(el("option", { value: "", text: `all ${label}` }));
    for (const v of values) select.append(el("option", { value: v, text: names ? names[v] : v }));
    select.addEventListener("change", renderList);
  }

  function filtered() {
    const outcome = $("f-outcome").value;
    const family = $("f-family").value;
    const agent = $("f-agent").value;
    const text = $("f-text").value.trim().toLowerCase();
    return DATA.problems.filter(
      (p) =>
        (!outcome || p.outcome === outcome) &&
        (!family || p.family === family) &&
        (!agent || p.best_agent === agent) &&
        (!text || p.id.toLowerCase().includes(text)),
    );
  }

  function renderList() {
    const rows = filtered();
    const body = $("problems").tBodies[0];
    body.replaceChildren(
      ...rows.map((p) =>
        el(
          "tr",
          { "data-problem": p.id, class: state.problem === p ? "selected" : "", onclick: () => selectProblem(p.id) },
          el("td", { text: p.id, title: p.id }),
          el("td", { text: p.family || "-" }),
          el("td", {}, el("span", { class: `badge ${p.outcome}`, text: p.outcome })),
          el("td", { class: p.verified ? "ok" : "bad", text: p.verified ? "\u2713" : "\u2717", title: `hidden ${pct(p.hidden_pass_rate)}` }),
          el("td", { text: p.tree ? String(p.tree.nodes.length) : "-" }),
        ),
      ),
    );
    $("list-count").textContent = `${rows.length} of ${DATA.problems.length} problems`;
  }

  // -- the chosen problem ------------------------------------------------------------------

  function selectProblem(id, nodeId) {
    const p = byId.get(id);
    if (!p) return;
    state.problem = p;
    state.collapsed = new Set();
    state.node = null;
    for (const tr of $("problems").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.problem === id);
    renderSummary();
    renderTree(true);
    if (p.tree) selectNode(nodeId !== undefined && p.tree.nodes[nodeId] ? nodeId : p.tree.best ?? 0);
    else $("details").replaceChildren(el("p", { class: "hint", text: "No tree recorded for this problem." }));
    writeHash();
  }

  function renderSummary() {
    const p = state.problem;
    const facts = [
      `${OUTCOME_LABEL[p.outcome]}`,
      `family ${p.family || "-"}`,
      `source ${p.source}${p.difficulty ? " (" + p.difficulty + ")" : ""}`,
      `public ${pct(p.public_pass_rate)}`,
      `hidden ${pct(p.hidden_pass_rate)} (${p.verified ? "verified" : p.hidden_status || "not run"})`,
      `best program by ${p.best_agent || "-"}`,
      `${p.rollouts} rollouts`,
      `generations ${Object.entries(p.llm_generations || {}).map(([a, n]) => `${a} ${n}`).join(", ") || "-"}`,
      p.tree ? `${p.tree.nodes.length} nodes, depth ${p.tree_depth}` : "tree not recorded",
    ];
    if (p.tree && p.extends_other_agent !== null) {
      facts.push(`${p.extends_other_agent} of ${p.deeper_thoughts} deeper thoughts extend another agent's thought`);
    }
    $("summary").replaceChildren(
      el("h2", { text: p.id }),
      el("div", { class: "facts", text: facts.join(" \u00b7 ") }),
      el("details", {}, el("summary", { text: "problem statement" }), el("pre", { text: p.prompt })),
    );
  }

  // -- layout and drawing ------------------------------------------------------------------

  function children(nodes) {
    const kids = nodes.map(() => []);
    for (const n of nodes) if (n.parent !== null) kids[n.parent].push(n.id);
    return kids;
  }

  function bestPath(p) {
    const on = new Set();
    if (!p.tree || p.tree.best === null || p.tree.best === undefined) return on;
    for (let id = p.tree.best; id !== null; id = p.tree.nodes[id].parent) on.add(id);
    return on;
  }

  // Tidy left-to-right layout: leaves take consecutive rows, a parent sits between its first and
  // last shown child. Collapsed subtrees count their hidden nodes for the "+N" badge.
  function layout(nodes, kids, onBest) {
    const pos = new Map();
    const hidden = new Map();
    let row = 0;
    const shownKids = (id) => kids[id].filter((k) => !(state.hidePruned && nodes[k].pruned && !onBest.has(k)));
    const size = (id) => kids[id].reduce((s, k) => s + 1 + size(k), 0);
    const place = (id, depth) => {
      const show = shownKids(id);
      let y;
      if (state.collapsed.has(id) || show.length === 0) {
        y = row++;
        if (state.collapsed.has(id) && kids[id].length) hidden.set(id, size(id));
      } else {
        const ys = show.map((k) => place(k, depth + 1));
        y = (ys[0] + ys[ys.length - 1]) / 2;
      }
      pos.set(id, { x: depth * LEVEL, y: y * ROW });
      return y;
    };
    place(0, 0);
    return { pos, hidden, rows: row };
  }

  // The drawing's extent from the layout (labels estimated), without asking the browser for a
  // layout pass in the middle of building it.
  function bounds(pos) {
    let x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
    for (const at of pos.values()) {
      x1 = Math.min(x1, at.x - 12); x2 = Math.max(x2, at.x + 14 + 6.2 * LABEL_CHARS);
      y1 = Math.min(y1, at.y - 12); y2 = Math.max(y2, at.y + 16);
    }
    return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
  }

  function renderTree(fit) {
    const t0 = performance.now();
    const p = state.problem;
    viewport.replaceChildren();
    const missing = $("no-tree");
    if (!p.tree) {
      missing.hidden = false;
      missing.replaceChildren(...treelessView(p));
      timeRender(p, 0, t0);
      return;
    }
    missing.hidden = true;
    const nodes = p.tree.nodes;
    const kids = children(nodes);
    const onBest = bestPath(p);
    const { pos, hidden } = layout(nodes, kids, onBest);
    const edges = sv("g", {});
    const links = sv("g", {});
    const marks = sv("g", {});
    for (const [id, at] of pos) {
      const n = nodes[id];
      if (n.parent !== null) {
        const from = pos.get(n.parent);
        const mid = (from.x + at.x) / 2;
        edges.append(sv("path", {
          class: onBest.has(id) ? "edge best" : "edge",
          d: `M${from.x},${from.y} C${mid},${from.y} ${mid},${at.y} ${at.x},${at.y}`,
        }));
      }
      if (n.refined_from !== null && pos.has(n.refined_from)) {
        const src = pos.get(n.refined_from);
        const bend = at.x - 28 - Math.min(40, Math.abs(at.y - src.y) / 4);
        links.append(sv("path", { class: "refine-link", d: `M${src.x - 8},${src.y} C${bend},${src.y} ${bend},${at.y} ${at.x - 8},${at.y}` }));
      }
      marks.append(drawNode(n, at, onBest.has(id), hidden.get(id), id === p.tree.best));
    }
    viewport.append(edges, links, marks);
    state.focus = pos.get(p.tree.best ?? 0) || pos.get(0);
    state.bounds = bounds(pos);
    renderLegend();
    if (fit) fitView(true);
    else applyView();
    timeRender(p, pos.size, t0);
  }

  function timeRender(p, nodes, t0) {
    const record = { problem: p.id, nodes, scriptMs: performance.now() - t0, frameMs: null };
    state.lastRender = record;
    // Style, layout and paint happen after this script returns: time to the next painted frame.
    requestAnimationFrame(() => setTimeout(() => { record.frameMs = performance.now() - t0; }, 0));
  }

  function drawNode(n, at, onBest, hiddenCount, isBest) {
    const cls = ["node", n.kind, n.pruned ? "pruned" : "", onBest ? "on-best" : "", state.node === n.id ? "selected" : ""];
    const g = sv("g", { class: cls.join(" ").replace(/\s+/g, " ").trim(), transform: `translate(${at.x},${at.y})`, "data-node": n.id });
    const fill = state.colour === "agent" ? agentColour(n.agent) : valueColour(n.value);
    let mark;
    if (n.kind === "refine") mark = sv("rect", { x: -6, y: -6, width: 12, height: 12, transform: "rotate(45)" });
    else mark = sv("circle", { r: n.kind === "root" ? 9 : 7 });
    mark.setAttribute("class", "mark");
    mark.setAttribute("fill", fill);
    g.append(sv("circle", { class: "ring", r: 12, fill: "none", stroke: "none" }), mark);
    const label = sv("text", { class: "label", x: 13, y: 0 });
    label.textContent = (isBest ? "\u2605 " : "") + (n.thought === null ? "(problem)" : short(n.thought));
    g.append(label);
    if (hiddenCount) {
      const more = sv("text", { class: "more", x: 13, y: 12 });
      more.textContent = `+${hiddenCount} hidden`;
      g.append(more);
    }
    const title = sv("title", {});
    title.textContent = `#${n.id} ${n.agent || "root"} \u00b7 value ${num(n.value)}${n.pruned ? " \u00b7 pruned" : ""}\n${n.thought || ""}`;
    g.append(title);
    g.addEventListener("click", (e) => { e.stopPropagation(); selectNode(n.id); });
    g.addEventListener("dblclick", (e) => { e.stopPropagation(); toggle(n.id); });
    return g;
  }

  function renderLegend() {
    const items = [];
    if (state.colour === "value") {
      items.push(el("span", {}, el("span", { class: "ramp" }), " value 0 \u2192 1 (mean public pass rate)"));
      items.push(el("span", {}, el("span", { class: "swatch", style: "background:#c3c8d0" }), "not simulated"));
    } else {
      for (const a of DATA.agents) items.push(el("span", {}, el("span", { class: "swatch", style: `background:${agentColour(a)}` }), a));
    }
    items.push(el("span", { text: "\u25cf thought \u25c6 refinement \u2605 best program; dashed + struck: pruned; gold: path to the best program; purple dashes: refined from" }));
    $("legend").replaceChildren(...items);
  }

  function treelessView(p) {
    const out = [el("p", { text: "The tree was not recorded in this trace: it was searched before traces carried their tree. Re-run Boost on this problem to see it. The programs it evaluated:" })];
    for (const e of p.evaluations || []) {
      out.push(el("div", { class: "sim" },
        el("div", { text: `${e.agent} \u00b7 ${e.status} \u00b7 public ${pct(e.reward)} \u00b7 after ${e.thoughts.length} thought(s)` }),
        ...e.thoughts.map((t) => el("pre", { class: "thought", text: t })),
        el("pre", { class: "program", text: e.program })));
    }
    return out;
  }

  // -- zoom and pan ------------------------------------------------------------------------

  function applyView() {
    const v = state.view;
    viewport.setAttribute("transform", `translate(${v.x},${v.y}) scale(${v.k})`);
  }

  // Fit the tree into the view; with `readable`, never below READABLE_ZOOM: a large tree then
  // opens centred on the best program's node, and the fit button shows all of it.
  function fitView(readable) {
    const box = state.bounds;
    const w = svg.clientWidth || 800;
    const h = svg.clientHeight || 600;
    let k = Math.min(1.4, (w - 40) / Math.max(box.width, 1), (h - 40) / Math.max(box.height, 1));
    if (readable === true) k = Math.max(k, READABLE_ZOOM);
    const focus = state.focus || { x: box.x + box.width / 2, y: box.y + box.height / 2 };
    const along = (size, start, view, at) => (size * k <= view - 40 ? (view - size * k) / 2 - start * k : view / 2 - at * k);
    state.view = { k, x: along(box.width, box.x, w, focus.x), y: along(box.height, box.y, h, focus.y) };
    applyView();
  }

  function zoomAt(factor, cx, cy) {
    const v = state.view;
    const k = Math.max(0.05, Math.min(6, v.k * factor));
    state.view = { k, x: cx - ((cx - v.x) * k) / v.k, y: cy - ((cy - v.y) * k) / v.k };
    applyView();
  }

  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = svg.getBoundingClientRect();
    zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });

  let drag = null;
  svg.addEventListener("pointerdown", (e) => {
    if (e.target.closest && e.target.closest(".node")) return;
    drag = { x: e.clientX, y: e.clientY, vx: state.view.x, vy: state.view.y };
    svg.setPointerCapture(e.pointerId);
    svg.classList.add("panning");
  });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    state.view.x = drag.vx + e.clientX - drag.x;
    state.view.y = drag.vy + e.clientY - drag.y;
    applyView();
  });
  const endDrag = () => { drag = null; svg.classList.remove("panning"); };
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);

  // -- collapsing --------------------------------------------------------------------------

  function toggle(id) {
    if (state.collapsed.has(id)) state.collapsed.delete(id);
    else if (children(state.problem.tree.nodes)[id].length) state.collapsed.add(id);
    renderTree(false);
  }

  function collapseWhere(keep) {
    const p = state.problem;
    if (!p || !p.tree) return;
    const kids = children(p.tree.nodes);
    state.collapsed = new Set(p.tree.nodes.filter((n) => kids[n.id].length && !keep(n)).map((n) => n.id));
    renderTree(true);
  }

  // -- node details ------------------------------------------------------------------------

  function nodeButton(id, nodes) {
    const n = nodes[id];
    return el("button", { class: "link", type: "button", text: `#${id}${n.thought ? " " + short(n.thought) : ""}`, onclick: () => selectNode(id) });
  }

  function depthOf(nodes, id) {
    let d = 0;
    for (let at = nodes[id].parent; at !== null; at = nodes[at].parent) d++;
    return d;
  }

  function selectNode(id) {
    const p = state.problem;
    const nodes = p.tree.nodes;
    const n = nodes[id];
    state.node = id;
    for (const g of viewport.querySelectorAll(".node")) g.classList.toggle("selected", Number(g.dataset.node) === id);
    const isBest = id === p.tree.best;
    const parts = [
      el("h3", { text: `node #${id} \u00b7 ${n.kind}${n.agent ? " \u00b7 proposed by " + n.agent : ""}${isBest ? " \u00b7 best program" : ""}` }),
    ];
    if (n.thought === null) parts.push(el("p", { text: "The root: the problem alone, before any thought." }));
    else parts.push(el("h4", { text: "thought" }), el("pre", { class: "thought", text: n.thought }));
    const facts = [["depth", String(depthOf(nodes, id))], ["prior", num(n.prior)], ["visits", String(n.visits)],
      ["value", num(n.value)], ["q (best return below)", num(n.q)], ["pruned", n.pruned ? "yes" : "no"]];
    parts.push(el("table", {}, ...facts.map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { text: v })))));
    if (n.parent !== null) parts.push(el("p", {}, "parent: ", nodeButton(n.parent, nodes)));
    if (n.refined_from !== null) {
      parts.push(el("h4", { text: "refinement" }), el("p", {}, "refined from ", nodeButton(n.refined_from, nodes)));
      if (n.feedback) parts.push(el("div", { text: "the execution feedback that led to it:" }), el("pre", { class: "feedback", text: n.feedback }));
    }
    const into = nodes.filter((m) => m.refined_from === id);
    if (into.length) parts.push(el("p", {}, "refined into ", ...into.map((m) => nodeButton(m.id, nodes))));
    const kids = children(nodes)[id];
    if (kids.length) {
      parts.push(el("p", {}, `${kids.length} child thought(s) `,
        el("button", { type: "button", text: state.collapsed.has(id) ? "expand subtree" : "collapse subtree", onclick: () => { toggle(id); selectNode(id); } })));
    }
    parts.push(el("h4", { text: `${n.simulations.length} program(s) simulated from this state` }));
    const chosenAt = isBest ? n.simulations.findIndex((s) => s.program === p.best_program && s.agent === p.best_agent) : -1;
    n.simulations.forEach((s, i) => {
      const chosen = i === chosenAt;
      parts.push(el("div", { class: chosen ? "sim best" : "sim" },
        el("div", { text: `${s.agent} \u00b7 ${s.status} \u00b7 public tests ${pct(s.reward)}${chosen ? " \u00b7 the chosen program" : ""}` }),
        el("pre", { class: "program", text: s.program }),
        el("pre", { class: s.reward >= 1 ? "result" : "feedback", text: s.feedback })));
    });
    $("details").replaceChildren(...parts);
    writeHash();
  }

  // -- wiring ------------------------------------------------------------------------------

  function writeHash() {
    if (!state.problem) return;
    const node = state.node === null ? "" : `&node=${state.node}`;
    history.replaceState(null, "", `#problem=${encodeURIComponent(state.problem.id)}${node}`);
  }

  function readHash() {
    const args = new URLSearchParams(location.hash.slice(1));
    const node = args.get("node");
    return { problem: args.get("problem"), node: node === null ? undefined : Number(node) };
  }

  function start() {
    const counts = { root: 0, tree: 0, unsolved: 0 };
    for (const p of DATA.problems) counts[p.outcome]++;
    $("run-counts").textContent = `${DATA.problems.length} problems: ${counts.root} solved at the root, ${counts.tree} by the tree, ${counts.unsolved} unsolved`;
    if (DATA.report) $("links").append(el("a", { href: DATA.report, text: "\u2190 report.md" }));
    fillSelect($("f-outcome"), "outcomes", Object.keys(OUTCOME_LABEL), OUTCOME_LABEL);
    fillSelect($("f-family"), "families", DATA.families);
    fillSelect($("f-agent"), "agents", DATA.agents);
    $("f-text").addEventListener("input", renderList);
    for (const r of document.querySelectorAll("input[name=colour]")) {
      r.addEventListener("change", () => { state.colour = r.value; if (state.problem) renderTree(false); });
    }
    $("hide-pruned").addEventListener("change", (e) => { state.hidePruned = e.target.checked; if (state.problem) renderTree(true); });
    $("b-fit").addEventListener("click", () => fitView(false));
    $("b-in").addEventListener("click", () => zoomAt(1.25, svg.clientWidth / 2, svg.clientHeight / 2));
    $("b-out").addEventListener("click", () => zoomAt(0.8, svg.clientWidth / 2, svg.clientHeight / 2));
    $("b-expand").addEventListener("click", () => collapseWhere(() => true));
    $("b-depth1").addEventListener("click", () => collapseWhere((n) => n.parent === null));
    $("b-path").addEventListener("click", () => {
      const on = bestPath(state.problem);
      collapseWhere((n) => on.has(n.id) && n.id !== state.problem.tree.best);
    });
    window.addEventListener("hashchange", () => {
      const h = readHash();
      if (h.problem && (!state.problem || h.problem !== state.problem.id)) selectProblem(h.problem, h.node);
    });
    renderList();
    const wanted = readHash();
    const first = byId.has(wanted.problem) ? wanted.problem : (filtered()[0] || {}).id;
    if (first !== undefined) selectProblem(first, wanted.node);
  }

  // For tests and the console: the last render's timing, and selection by id.
  window.bdcExplorer = { get lastRender() { return state.lastRender; }, selectProblem, selectNode };
  start();
})();
