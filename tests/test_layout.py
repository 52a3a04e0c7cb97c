"""The layers of bids-ms, checked on the import graph built with ``ast``.

The rules of the layout (see CONTRIBUTING.md):

* no import circles between modules;
* the science modules (pure computation over arrays and tables) import neither ``io``,
  ``levels``, ``cli``, ``reports`` nor the nipype layers ``interfaces``/``workflows``;
* ``io`` imports neither ``levels``, ``cli`` nor ``reports``.

Every import counts: absolute and relative, at module level and inside functions, and
``importlib.import_module("bids_ms…")`` with a literal name. ``from pkg import name`` is an
edge to the submodule ``pkg.name`` when there is one, else to ``pkg``. Importing ``a.b`` also
runs ``a/__init__.py``; that implicit edge is not counted, so that a package's ``__init__``
may re-export its submodules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bids_ms"

#: Pure-science modules (``lofo`` once it exists).
SCIENCE = (
    "atlas",
    "similarity",
    "models",
    "lofo",
    "spins",
    "pls",
    "enrichment",
    "hubs",
    "crosscohort",
    "economo",
    "harmonize",
)
SCIENCE_MUST_NOT_IMPORT = ("io", "levels", "cli", "reports", "interfaces", "workflows")
IO_MUST_NOT_IMPORT = ("levels", "cli", "reports")

#: Edges that break a layer rule on purpose, each with its reason and how it goes away.
#: Emptied at merge once the callers import from the new home.
ALLOWED_EDGES: dict[tuple[str, str], str] = {}

#: Import circles tolerated for now (frozensets of module names), each with its reason.
#: Empty: keep it so.
ALLOWED_CYCLES: dict[frozenset[str], str] = {}


# --------------------------------------------------------------------------- the graph


def _module_names(root: Path) -> dict[str, tuple[Path, bool]]:
    """``dotted name -> (file, is a package __init__)`` for every ``.py`` under ``root``."""
    mods = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        mods[".".join(parts)] = (path, is_pkg)
    return mods


def _imported_names(tree: ast.AST, package: str, top: str) -> set[tuple[str, str]]:
    """``(dotted name, fallback)`` pairs that a module's code imports.

    ``from a import b`` gives ``("a.b", "a")``: the submodule when there is one, else ``a``.
    """
    out: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update((a.name, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.update((f"{target}.{a.name}", target) for a in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            out.add((node.args[0].value, node.args[0].value))
    return {(n, f) for n, f in out if f == top or f.startswith(top + ".")}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """``module -> modules it imports`` for the package at ``root``."""
    mods = _module_names(root)
    graph: dict[str, set[str]] = {}
    for name, (path, is_pkg) in mods.items():
        package = name if is_pkg else name.rsplit(".", 1)[0]
        names = _imported_names(ast.parse(path.read_text(encoding="utf-8")), package, root.name)
        edges = set()
        for n, fallback in names:
            if n in mods:
                edges.add(n)
            elif fallback in mods:
                edges.add(fallback)
        edges.discard(name)
        graph[name] = edges
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Modules reached from ``start`` through one or more imports."""
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The import circles: groups of two or more modules that all reach each other.

    The strongly connected components of the graph, found by reachability (the package has
    some tens of modules, so the quadratic search is instant).
    """
    reach = {node: _reachable(graph, node) for node in graph}
    found: list[frozenset[str]] = []
    for node in sorted(graph):
        comp = frozenset({node} | {m for m in reach[node] if node in reach.get(m, ())})
        if len(comp) > 1 and comp not in found:
            found.append(comp)
    return found


def _in_layer(module: str, layer: str, top: str = "bids_ms") -> bool:
    prefix = f"{top}.{layer}"
    return module == prefix or module.startswith(prefix + ".")


def layer_violations(
    graph: dict[str, set[str]],
    *,
    allowed: dict[tuple[str, str], str] | None = None,
    top: str = "bids_ms",
) -> list[str]:
    """Every edge that breaks a layer rule, as ``'importer -> imported (rule)'``."""
    allowed = allowed or {}
    bad = []
    for src, targets in sorted(graph.items()):
        if any(_in_layer(src, s, top) for s in SCIENCE):
            rule, forbidden = "science", SCIENCE_MUST_NOT_IMPORT
        elif _in_layer(src, "io", top):
            rule, forbidden = "io", IO_MUST_NOT_IMPORT
        else:
            continue
        for dst in sorted(targets):
            if (src, dst) in allowed:
                continue
            if any(_in_layer(dst, f, top) for f in forbidden):
                bad.append(f"{src} -> {dst} ({rule} must not import {', '.join(forbidden)})")
    return bad


# --------------------------------------------------------------------------- the rules


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_graph_reads_the_package(graph):
    # Sanity: the parser sees relative imports between layers of the real package.
    assert "bids_ms.levels.group" in graph
    assert "bids_ms.io.derivatives" in graph["bids_ms.levels.group"]
    assert "bids_ms.errors" in graph["bids_ms.io.refmaps"]
    assert "bids_ms.atlas" in graph["bids_ms.io.refmaps"]


def test_no_import_circles(graph):
    found = [c for c in cycles(graph) if c not in ALLOWED_CYCLES]
    assert not found, "import circles: " + "; ".join(" <-> ".join(sorted(c)) for c in found)


def test_layers(graph):
    assert layer_violations(graph, allowed=ALLOWED_EDGES) == []


def test_allow_lists_hold_only_live_exceptions(graph):
    # An exception that no longer happens must leave the allow-list.
    for src, dst in ALLOWED_EDGES:
        assert dst in graph.get(src, set()), f"stale ALLOWED_EDGES entry {src} -> {dst}"
    live = set(cycles(graph))
    for cyc in ALLOWED_CYCLES:
        assert cyc in live, f"stale ALLOWED_CYCLES entry {sorted(cyc)}"


# --------------------------------------------------------------------------- the test can fail


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_checks_catch_a_violating_package(tmp_path):
    """A fake ``bids_ms`` with a circle and upward imports of every kind is caught."""
    root = tmp_path / "bids_ms"
    _write(root, "__init__.py", "")
    _write(root, "io/__init__.py", "")
    _write(root, "levels/__init__.py", "")
    _write(root, "cli/__init__.py", "")
    _write(root, "reports/__init__.py", "from . import page\n")
    _write(root, "reports/page.py", "from ..atlas import X\n")
    # science -> io at module level (relative), io -> levels inside a function (absolute),
    # science -> cli through importlib, a circle pls <-> models.
    _write(root, "atlas.py", "from .io import refmaps\nX = 1\n")
    _write(root, "io/refmaps.py", "def f():\n    import bids_ms.levels.group\n")
    _write(root, "levels/group.py", "from ..io.refmaps import f\nfrom .. import atlas\n")
    _write(root, "pls.py", "from .models import ols\n")
    _write(
        root,
        "models.py",
        "import importlib\n\ndef ols():\n    from . import pls\n"
        "    return importlib.import_module('bids_ms.cli.run')\n",
    )
    _write(root, "cli/run.py", "import numpy\nfrom bids_ms.levels import group\n")

    g = import_graph(root)
    assert g["bids_ms.atlas"] == {"bids_ms.io.refmaps"}
    assert g["bids_ms.io.refmaps"] == {"bids_ms.levels.group"}
    assert g["bids_ms.levels.group"] == {"bids_ms.io.refmaps", "bids_ms.atlas"}
    assert g["bids_ms.models"] == {"bids_ms.pls", "bids_ms.cli.run"}
    assert g["bids_ms.cli.run"] == {"bids_ms.levels.group"}
    assert g["bids_ms.reports"] == {"bids_ms.reports.page"}

    found = set(cycles(g))
    assert frozenset({"bids_ms.pls", "bids_ms.models"}) in found
    # atlas -> io.refmaps -> levels.group -> atlas
    assert frozenset({"bids_ms.atlas", "bids_ms.io.refmaps", "bids_ms.levels.group"}) in found
    assert len(found) == 2

    bad = layer_violations(g)
    assert any(b.startswith("bids_ms.atlas -> bids_ms.io.refmaps (science") for b in bad)
    assert any(b.startswith("bids_ms.io.refmaps -> bids_ms.levels.group (io") for b in bad)
    assert any(b.startswith("bids_ms.models -> bids_ms.cli.run (science") for b in bad)
    assert len(bad) == 3
    # An allow-listed edge is not reported.
    assert len(layer_violations(g, allowed={("bids_ms.atlas", "bids_ms.io.refmaps"): "x"})) == 2


def test_cycles_on_a_plain_graph():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert cycles(g) == [frozenset({"a", "b", "c"})]
    assert cycles({"a": {"b"}, "b": set()}) == []
