"""A quick run of every benchmark in bench/ (``--smoke``), so that none of them rots.

These check that each script runs end to end and writes figures of the right shape; they are
not timed tests (the figures themselves are in bench/RESULTS.md, measured on a quiet machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def smoke(script: str, tmp_path: Path, timeout: float = 600) -> dict[str, Any]:
    out = tmp_path / f"{script}.json"
    env = {**os.environ, "CLINSIM_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{script}.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("machine: ")
    data: dict[str, Any] = json.loads(out.read_text())
    assert data["machine"]
    return data


def test_capacity_smoke(tmp_path: Path) -> None:
    rows = smoke("capacity", tmp_path)["clients"]
    assert [r["client"] for r in rows] == ["aiohttp", "openai"]
    assert all(r["calls_per_s"] > 0 and r["server_cpu_ms_per_call"] > 0 for r in rows)


def test_langgraph_step_smoke(tmp_path: Path) -> None:
    data = smoke("langgraph_step", tmp_path)
    assert data["ms_per_step"] > 0 and data["ms_per_step_untraced"] > 0


def test_concurrency_smoke(tmp_path: Path) -> None:
    data = smoke("concurrency", tmp_path)
    for row in data["levels"]:
        assert row["calls_per_episode"] == pytest.approx(5.0)  # 3 clinician turns, 2 patient
        assert 0 < row["eps_per_s"] <= row["ideal_eps_per_s"] * 1.05
    assert data["naive"]["ratio"] > 1  # 4 episodes at once beat one after another


def test_overhead_smoke(tmp_path: Path) -> None:
    (row,) = smoke("overhead", tmp_path)["levels"]
    for loop in ("clinsim", "bare", "sdk_aiohttp", "lean"):
        assert row[f"{loop}_eps_per_s"] > 0 and row[f"{loop}_cpu_ms_per_call"] > 0
    assert row["harness_alone_cpu_ms_per_turn"] > 0
    # Every loop did the same work: the same calls, every episode finished. (Which loop costs
    # less CPU is the benchmark's finding, not a smoke check: one short run cannot settle it.)
    runs = row["runs"]
    for loop, r in runs.items():
        assert r["calls"] == runs["clinsim"]["calls"] and min(r["calls"]) > 0, loop
        assert r["episodes_done"] == [row["episodes"]] * len(r["calls"]), loop


def test_memory_smoke(tmp_path: Path) -> None:
    (row,) = smoke("memory", tmp_path)["levels"]
    assert row["peak_mb"] >= row["base_mb"] > 0
    assert row["mb_per_episode"] >= 0


def test_grader_smoke(tmp_path: Path) -> None:
    data = smoke("grader", tmp_path)
    per, batched = data["modes"]["per-criterion"], data["modes"]["batched"]
    assert per["mean"]["calls"] == pytest.approx(data["criteria_per_rubric_mean"])  # one each
    assert batched["per_episode"]["calls"] == [1] * data["episodes"]  # one per rubric
    assert per["server_agrees"] and batched["server_agrees"]  # usage = the server's counts


def test_startup_smoke(tmp_path: Path) -> None:
    data = smoke("startup", tmp_path)
    floor = data["commands"]["python -c pass"]["median_s"]
    assert data["commands"]["clinsim --help"]["median_s"] > floor > 0
    tui = data["tui"]
    assert 0 < tui["to_run"]["median_s"] <= tui["to_ready"]["median_s"] <= tui["wall"]["median_s"]


def test_embedded_smoke(tmp_path: Path) -> None:
    data = smoke("embedded", tmp_path, timeout=1200)
    assert data["recorded"]["calls"] >= 3  # clinician, patient, clinician at least, then grading
    for how in ("clinsim", "raw", "raw-same-settings"):
        assert data["tokens_per_s"][how]["median"] > 0
    assert [row["k"] for row in data["batched_decode"]] == [1, 2]
    assert all(row["tokens_per_s"] > 0 for row in data["batched_decode"])
    assert data["concurrent"]["speedup"] > 0
    assert data["concurrent"]["same_transcripts"]  # batching changes no answer
    assert data["demo"]["now"]["peak_mb"][0] > 50
