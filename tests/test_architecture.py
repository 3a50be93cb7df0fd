"""The architecture stays true: imports point down the layers of docs/architecture.md, no circles
(function-level imports count), small modules, and `python -m lorastrap --help` imports no torch.

Imports are read with `ast` from the source (every `import` statement, wherever it is), so a
circle hidden in a function body fails here just like one at the top of a module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lorastrap", "registry", "game_export", "migrations")
MAX_LINES = 400

# Each node (a sub-package of lorastrap, a top-level module of lorastrap, or a top-level package)
# may import only nodes of a LOWER rank. The table is docs/architecture.md's "Layers"; a new
# package or top-level module must be given its place here.
RANKS = {
    "lorastrap.kernel": 0, "lorastrap": 0,  # lorastrap/__init__.py: the version only
    "lorastrap.models": 1,  # the engine: base models, the LoRA file, generation
    "lorastrap.training": 2,
    "migrations": 3, "registry": 4,  # the data layer
    "game_export": 5,  # files for game engines, sheets, reports
    "lorastrap.config": 6, "lorastrap.naming": 6, "lorastrap.images": 6, "lorastrap.tags": 6,
    "lorastrap.workspace": 7, "lorastrap.queries": 7, "lorastrap.image_store": 7,
    "lorastrap.dataset": 8,
    "lorastrap.characters": 9,
    "lorastrap.method": 10, "lorastrap.clash": 10, "lorastrap.export": 10, "lorastrap.db": 10,
    "lorastrap.jobs": 11, "lorastrap.lab": 11,
    "lorastrap.watch": 12, "lorastrap.demo": 12,
    "lorastrap.ui": 13,
    "lorastrap.cli": 14,
    "lorastrap.__main__": 15,
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module `name` refers to (a module, or the module holding the attribute)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            resolved = _resolve(target)
            if resolved and resolved != module:
                found.add(resolved)
    return found


EDGES = {module: _imports(module, path) for module, path in MODULES.items()}


def node_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "lorastrap":
        return parts[0]
    if len(parts) == 1:
        return "lorastrap"
    if len(parts) > 2 or MODULES[module].name == "__init__.py":
        return ".".join(parts[:2])
    return module


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _node_edges() -> dict[str, dict[str, list[str]]]:
    arrows: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for module, targets in EDGES.items():
        for target in targets:
            if node_of(module) != node_of(target):
                arrows[node_of(module)][node_of(target)].append(f"{module} -> {target}")
    return arrows


def test_every_package_and_top_level_module_has_a_layer() -> None:
    missing = sorted({node_of(m) for m in MODULES} - set(RANKS))
    assert not missing, f"give these a rank in RANKS (and a line in docs/architecture.md): {missing}"


def test_no_circles_between_modules() -> None:
    assert _circles(EDGES) == []


def test_no_circles_between_packages() -> None:
    arrows = _node_edges()
    assert _circles({a: set(b) for a, b in arrows.items()}) == []


def test_imports_point_down_the_layers() -> None:
    upward = [why for a, targets in _node_edges().items() for b, whys in targets.items()
              if RANKS.get(b, 99) >= RANKS.get(a, -1) for why in whys]
    assert not upward, "imports that point up (or sideways) a layer:\n" + "\n".join(upward)


def test_the_engine_and_the_file_layers_import_only_the_kernel() -> None:
    """training/ imports no service and no game_export; models/, registry and game_export no lorastrap."""
    allowed = {"lorastrap.models": {"lorastrap.kernel", "lorastrap"},
               "lorastrap.training": {"lorastrap.kernel", "lorastrap", "lorastrap.models"},
               "registry": {"lorastrap.kernel", "migrations"}, "game_export": {"lorastrap.kernel"},
               "lorastrap.kernel": set(), "migrations": set()}
    arrows = _node_edges()
    for node, ok in allowed.items():
        assert set(arrows.get(node, {})) <= ok, (node, {k: v for k, v in arrows[node].items() if k not in ok})


def test_the_clash_report_and_the_lab_meet_only_through_the_metric_interface() -> None:
    arrows = _node_edges()
    assert "lorastrap.lab" not in arrows.get("lorastrap.clash", {})


def test_the_cli_and_the_ui_run_no_sql() -> None:
    """Thin fronts: no query, no table; errors are translated (registry.errors, sqlalchemy.exc)."""
    for module, path in MODULES.items():
        if node_of(module) not in ("lorastrap.cli", "lorastrap.ui"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        sql = {n for n in names if n.startswith(("sqlalchemy", "registry"))} - {"sqlalchemy.exc", "registry.errors"}
        assert not sql, (module, sql)


def test_modules_are_small_and_say_what_they_are() -> None:
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= MAX_LINES, f"{module}: {len(text.splitlines())} lines (at most {MAX_LINES})"
        if text.strip() and not module.startswith("migrations.versions"):
            assert ast.get_docstring(ast.parse(text)), f"{module} has no docstring"


@pytest.mark.parametrize("argv", [["--help"], ["character", "--help"], ["export", "sprites", "--help"],
                                  ["clash", "--help"]])
def test_help_imports_no_torch(argv: list[str]) -> None:
    """`python -m lorastrap --help` (and a command group's help) stays fast: torch is never imported."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "lorastrap", *argv], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "Usage:" in run.stdout and imported, run.stderr[-500:]
    assert not {m for m in imported if m.split(".")[0] in ("torch", "diffusers", "transformers")}
