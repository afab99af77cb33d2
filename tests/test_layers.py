"""The dependency rule of the architecture (README "Architecture"): imports point one way between the packages, and
there is no import circle. Read from the source with `ast`, so a lazy import inside a function counts too."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ioa_state", "prompts", "tasks", "training", "agents", "baselines", "graph", "bench", "viewers", "cli")
# what each package may import (besides itself)
ALLOWED = {
    "ioa_state": set(),
    "prompts": set(),
    "tasks": {"ioa_state"},
    "training": {"ioa_state"},
    "agents": {"ioa_state", "prompts", "tasks", "training"},
    "baselines": {"ioa_state", "prompts", "tasks", "training", "agents"},
    "graph": {"ioa_state", "agents", "baselines", "training", "tasks"},
    "bench": {"ioa_state", "agents", "baselines", "graph", "training", "tasks"},
    "viewers": {"ioa_state", "agents", "graph"},
    "cli": {"ioa_state", "agents", "graph", "bench", "viewers", "tasks", "training"},
}


def _is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(package: str) -> dict[str, set[str]]:
    """module -> the modules of ours it imports."""
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        mod = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                # `from pkg import mod` imports the module pkg/mod.py, not pkg/__init__.py
                names = [f"{node.module}.{a.name}" if _is_module(f"{node.module}.{a.name}") else node.module
                         for a in node.names]
            else:
                names = []
            found |= {n for n in names if n.split(".")[0] in PACKAGES}
        out[mod] = found
    return out


def test_imports_point_one_way_between_packages():
    wrong = []
    for pkg in PACKAGES:
        for mod, deps in imports_of(pkg).items():
            wrong += [f"{mod} imports {d}" for d in deps if d.split(".")[0] not in ALLOWED[pkg] | {pkg}]
    assert not wrong, wrong


def test_graph_imports_no_viewer_and_no_cli():
    for mod, deps in imports_of("graph").items():
        assert not {d for d in deps if d.split(".")[0] in ("viewers", "cli", "bench")}, mod


def test_no_import_circle_between_modules():
    g = nx.DiGraph()
    for pkg in PACKAGES:
        for mod, deps in imports_of(pkg).items():
            g.add_node(mod)
            # `from pkg import mod` names a module or a name in pkg/__init__: an edge to the most specific module
            g.add_edges_from((mod, d) for d in deps if d != mod)
    cycles = [c for c in nx.simple_cycles(g) if len(c) > 1]
    assert not cycles, cycles[:3]
