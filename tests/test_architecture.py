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
