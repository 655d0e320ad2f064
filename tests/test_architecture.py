"""The design's import rules, enforced by import-linter (contracts in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    # The console script beside this interpreter (on PATH or not), else its entry point.
    exe = Path(sys.executable).with_name("lint-imports")
    entry = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", entry]
    proc = subprocess.run(
        [*cmd, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "BROKEN" not in proc.stdout and "KEPT" in proc.stdout


def import_cycles(packages: list[str]) -> list[list[str]]:
    """Groups of our modules that import each other, directly or through others (strongly
    connected components of the import graph, imports under TYPE_CHECKING left out, as the
    contracts leave them out). A package's ``__init__`` re-exporting its own modules is not a
    cycle between modules, so imports of a module's own package are left out too."""
    import grimp

    graph = grimp.build_graph(*packages, exclude_type_checking_imports=True)
    edges: dict[str, set[str]] = {}
    for m in graph.modules:
        edges[m] = {
            n
            for n in graph.find_modules_directly_imported_by(m)
            if not m.startswith(n + ".") and not n.startswith(m + ".")
        }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for m in sorted(edges):
        if m not in index:
            visit(m)
    return out


def test_no_module_imports_itself_through_others() -> None:
    assert import_cycles(["simulator", "judges", "tui", "scenarios", "personas"]) == []
