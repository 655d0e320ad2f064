"""Data written by an earlier clinsim (result schema 1, run manifest without a version) still
loads, reports identically and resumes. The fixtures in tests/fixtures/v1 were made by clinsim
0.1.0 at the commit before the engine was re-laid, from the repository root:

    clinsim batch --scenario triage-indigestion-chest-pain --persona calm-adult \\
        --patient scripted:tests/fixtures/v1/patient.yaml --judge-mode batched --max-turns 1 \\
        --store tests/fixtures/v1/runs.sqlite -q --repeats 2 \\
        --clinician scripted:tests/fixtures/v1/clinician.yaml \\
        --judge scripted:tests/fixtures/v1/judge.yaml --run v1
    (the same with --judge scripted:tests/fixtures/v1/judge-down.yaml --run v1-judge-down)
    clinsim run ... --judge scripted:tests/fixtures/v1/judge.yaml --out .../result.json
    clinsim run ... --judge scripted:tests/fixtures/v1/judge-garbled.yaml \\
        --out .../result-unscored.json

then two reviews saved on run v1 with ``RunStore.save_review``, and each report written with
``clinsim report RUN --store ... --format FORMAT > report-RUN.FORMAT``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from simulator.record import load_result
from simulator.store import RunStore
from tests.simulator.test_cli import CLINSIM

ROOT = Path(__file__).resolve().parents[2]
V1 = Path("tests/fixtures/v1")  # relative: the stored model specs name the scripts so


def clinsim_at_root(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLINSIM, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "120"},
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    copy = tmp_path / "runs.sqlite"
    shutil.copyfile(ROOT / V1 / "runs.sqlite", copy)
    return copy


def test_version_1_result_files_load_with_the_unscored_reason_read_off() -> None:
    scored = load_result(ROOT / V1 / "result.json")
    assert scored.schema_version == 1 and scored.score is not None
    assert all(v.unscored_reason is None for v in scored.verdicts)
    garbled = load_result(ROOT / V1 / "result-unscored.json")
    assert garbled.score is None and garbled.unscored == len(garbled.verdicts) > 0
    # batched mode: a reply that never names a criterion leaves it "missing"
    assert {v.unscored_reason for v in garbled.verdicts} == {"missing"}


@pytest.mark.parametrize("run", ["v1", "v1-judge-down"])
@pytest.mark.parametrize("fmt", ["json", "csv", "jsonl", "healthbench"])
def test_a_version_1_store_reports_identically(store: Path, run: str, fmt: str) -> None:
    proc = clinsim_at_root("report", run, "--store", str(store), "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    expected = (ROOT / V1 / f"report-{run}.{fmt}").read_text(encoding="utf-8")
    assert proc.stdout == expected


def test_a_version_1_store_resumes_without_running_anything_again(store: Path) -> None:
    proc = clinsim_at_root(
        "batch", "--scenario", "triage-indigestion-chest-pain", "--persona", "calm-adult",
        "--patient", f"scripted:{V1}/patient.yaml", "--judge-mode", "batched",
        "--max-turns", "1", "--store", str(store), "-q", "--repeats", "2",
        "--clinician", f"scripted:{V1}/clinician.yaml", "--judge", f"scripted:{V1}/judge.yaml",
        "--run", "v1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "0 finished, 0 failed, 2 already in the store" in proc.stdout
    with RunStore(store) as st:
        reviews = st.reviews("v1")
        rows = st.episodes("v1")
    assert len(reviews) == 2 and len(rows) == 2


def test_a_version_1_judge_failure_is_infrastructure_and_reruns(store: Path) -> None:
    with RunStore(store) as st:
        (row,) = st.episodes("v1-judge-down")
    assert (row.status, row.failure_role, row.failure_kind) == (
        "failed",
        "infrastructure",
        "judge_call",
    )
    result = row.result_obj()
    assert {v.unscored_reason for v in result.verdicts} == {"call_failed"}
    proc = clinsim_at_root(
        "batch", "--scenario", "triage-indigestion-chest-pain", "--persona", "calm-adult",
        "--patient", f"scripted:{V1}/patient.yaml", "--judge-mode", "batched",
        "--max-turns", "1", "--store", str(store), "-q",
        "--clinician", f"scripted:{V1}/clinician.yaml",
        "--judge", f"scripted:{V1}/judge-down.yaml", "--run", "v1-judge-down",
    )  # fmt: skip
    # the same configuration: resumed, and the infrastructure failure runs again
    assert proc.returncode == 0, proc.stderr
    assert "0 finished, 1 failed, 0 already in the store" in proc.stdout
    with RunStore(store) as st:
        (again,) = st.episodes("v1-judge-down")
    assert again.attempts == 2 and again.failure_kind == "judge_call"
