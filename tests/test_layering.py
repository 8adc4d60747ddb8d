"""The package's layers hold in its imports (docs/architecture.md draws them).

A unit is a sub-package of bdc_ray (bdc_ray/boost/) or a top-level module (bdc_ray/storage.py);
the scripts in jobs/ are one more unit on top. Every import statement is read with ast, wherever
it stands (module level, inside a function, under `if TYPE_CHECKING:`), and:
- no unit imports a unit of a higher layer, and units import nothing in a cycle (so no two units
  import each other);
- a unit imports a stage, or a package of its own layer, only through that package's public face
  (the names its __init__ exports in __all__), never one of its modules;
- below the top, nobody imports bdc_ray.config (the one module that knows every section).
"""

from __future__ import annotations

import ast
import importlib
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "bdc_ray"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("utilities", ("storage", "resources", "metrics", "console", "threads", "ray_session", "lazy", "timing")),
    ("problems", ("problems",)),
    ("sandbox", ("sandbox",)),
    ("backends, training kit, sample scoring", ("llm", "training", "eval")),
    ("artifacts", ("artifacts",)),
    ("models", ("tiny", "models")),
    ("boost", ("boost",)),
    ("disentangle", ("disentangle",)),
    ("customize", ("customize",)),
    ("heldout", ("heldout",)),
    ("serve", ("serve",)),
    ("report", ("report",)),
    ("top", ("config", "cli", "pipeline", "demo", "plan")),
    ("jobs", ("jobs",)),
)
"""Bottom to top: the one place the order is written (docs/architecture.md must list the same)."""

STAGES = frozenset({"boost", "disentangle", "customize", "heldout", "serve", "report"})
TOP = "top"

LAYER_OF = {unit: index for index, (_, units) in enumerate(LAYERS) for unit in units}

@dataclass(frozen=True)
class Import:
    file: str
    line: int
    module: str
    """The absolute module named by the statement (`a.b` of `from a.b import c`)."""
    names: tuple[str, ...]
    """What `from ... import` takes out of it; empty for `import a.b`."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> list[Path]:
    """Every module of every unit (bdc_ray/__init__.py itself only names the version)."""
    package = [p for p in sorted((ROOT / PACKAGE).rglob("*.py")) if p != ROOT / PACKAGE / "__init__.py"]
    return package + sorted((ROOT / "jobs").glob("*.py"))


def unit_of_file(path: Path) -> str:
    parts = path.relative_to(ROOT).parts
    if parts[0] == "jobs":
        return "jobs"
    return parts[1].removesuffix(".py")


def imports_of(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(str(path.relative_to(ROOT)), node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            found.append(Import(str(path.relative_to(ROOT)), node.lineno, module, tuple(a.name for a in node.names)))
    return found


def targets(imp: Import) -> list[tuple[str, str, tuple[str, ...]]]:
    """(unit, module, names) of every bdc_ray unit the statement imports."""
    parts = imp.module.split(".")
    if parts[0] != PACKAGE:
        return []
    if len(parts) == 1:  # `from bdc_ray import storage, boost`
        return [(n, f"{PACKAGE}.{n}", ()) for n in imp.names if n != "__version__"]
    return [(parts[1], imp.module, imp.names)]


def faces() -> dict[str, frozenset[str]]:
    """The names each package's __init__ exports (__all__); a package without one has no face."""
    out = {}
    for unit in LAYER_OF:
        if (ROOT / PACKAGE / unit / "__init__.py").is_file():
            out[unit] = frozenset(getattr(importlib.import_module(f"{PACKAGE}.{unit}"), "__all__", ()))
    return out


def violations() -> dict[str, list[str]]:
    """{'<unit> -> <unit>: <rule>': [where...]} over the whole package and jobs/."""
    found: dict[str, list[str]] = defaultdict(list)
    exported = faces()
    for path in source_files():
        source = unit_of_file(path)
        if source not in LAYER_OF:
            found[f"{source}: not in LAYERS"].append(str(path.relative_to(ROOT)))
            continue
        for imp in imports_of(path):
            for unit, module, names in targets(imp):
                if unit == source:
                    continue
                where = f"{imp.file}:{imp.line} {module}"
                if unit not in LAYER_OF:
                    found[f"{source} -> {unit}: not in LAYERS"].append(where)
                    continue
                if unit == "config" and LAYERS[LAYER_OF[source]][0] != TOP:
                    found[f"{source} -> config: below the top"].append(where)
                elif LAYER_OF[unit] > LAYER_OF[source]:
                    found[f"{source} -> {unit}: upwards"].append(where)
                faced = unit in STAGES or LAYER_OF[unit] == LAYER_OF[source]
                if faced and unit in exported:
                    inner = module != f"{PACKAGE}.{unit}"
                    unknown = [n for n in names if n not in exported[unit]]
                    if inner or unknown:
                        found[f"{source} -> {unit}: around its public face"].append(where + f" {unknown or ''}")
    return found


def unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in source_files():
        source = unit_of_file(path)
        for imp in imports_of(path):
            graph[source].update(unit for unit, _, _ in targets(imp) if unit != source)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The units of every import cycle: each strongly connected group of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while (member := stack.pop()) != node:
                group.append(member)
            if group:
                groups.append(sorted([node, *group]))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def all_violations() -> dict[str, list[str]]:
    found = violations()
    graph = unit_graph()
    for a in sorted(graph):
        for b in sorted(graph[a]):
            if a < b and a in graph.get(b, ()):
                found[f"{a} <-> {b}: import each other"].append("")
    for group in cycles(graph):
        for unit in group:
            found[f"{unit}: in an import cycle"].append(" ".join(group))
    return found


def test_the_layer_rules_hold():
    found = all_violations()
    assert not found, "imports against the layers:\n" + "\n".join(f"{k}\n    " + "\n    ".join(v) for k, v in found.items())


def test_every_package_unit_is_placed_once():
    units = [u for _, us in LAYERS for u in us]
    assert len(units) == len(set(units)), "a unit is listed twice"
    on_disk = {p.name.removesuffix(".py") for p in (ROOT / PACKAGE).iterdir()
               if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file()}
    assert on_disk <= set(units), on_disk - set(units)


def test_docs_list_the_same_layers():
    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| (\d+) \| ([^|]+?) \| ([^|]+?) \|$", text, re.M)
    documented = [(name, tuple(u.strip(" `") for u in units.split(","))) for _, name, units in rows]
    assert [int(n) for n, _, _ in rows] == list(range(len(LAYERS)))
    assert documented == list(LAYERS)
