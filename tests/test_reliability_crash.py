"""Crashes: a batch killed with ``kill -9`` at random moments, several times over, then
resumed: the store passes SQLite's integrity check after every kill, finished episodes are
never touched again, and the final report equals that of a run that was never interrupted.

The scripted models here answer by rules (the same conversation always gets the same reply,
whatever the order of calls), so an interrupted run and an uninterrupted one can be compared
exactly; scores differ between scenarios, so the comparison is not between constants."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from scenarios import ScenarioLibrary
from simulator.store import RunStore
from tests.simulator.conftest import batched_reply
from tests.simulator.test_cli import CLINSIM, clinsim

PERSONAS = ["calm-adult", "reserved-terse"]
REPEATS = 2
KILLS = 3


def rule_models(tmp_path: Path) -> tuple[dict[str, str], int]:
    """Clinician replies keyed on each scenario's opening; judge verdicts keyed on the reply."""
    scenarios = [s for s in ScenarioLibrary.load() if s.id.startswith("triage-")]
    clinician, judge = [], []
    for n, sc in enumerate(scenarios):
        opening = sc.opening[0].content
        clinician.append(
            {"match": re.escape(opening[:60]), "text": f"Reply {n}: call 911 now.", "delay_s": 0.15}
        )
        judge.append({"match": f"Reply {n}:", "text": batched_reply(met_even=n % 2 == 0)})
    files = {
        "clinician": {"rules": clinician},
        "patient": {"rules": [{"match": ".", "text": "OK, thank you."}]},
        "judge": {"rules": judge},
    }
    specs = {}
    for role, data in files.items():
        path = tmp_path / f"{role}.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        specs[role] = f"scripted:{path}"
    return specs, len(scenarios) * len(PERSONAS) * REPEATS


def args(specs: dict[str, str], store: Path, run: str) -> list[str]:
    return [
        "batch", "--scenario", "triage-*", *[a for p in PERSONAS for a in ("--persona", p)],
        "--repeats", str(REPEATS), "--clinician", specs["clinician"], "--patient",
        specs["patient"], "--judge", specs["judge"], "--judge-mode", "batched",
        "--max-turns", "1", "--concurrency", "3", "--run", run, "--store", str(store), "-q",
    ]  # fmt: skip


def stored(store: Path) -> int:
    try:
        with sqlite3.connect(store, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """A report without what differs between two runs of the same config: the run's name and
    creation time, and wall-clock figures."""
    drop = {"run", "created_at", "duration_s", "finished_at", "episodes_per_min", "attempts"}

    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items() if k not in drop}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    return clean(report)


def report(store: Path, run: str) -> dict[str, Any]:
    proc = clinsim("report", run, "--store", str(store), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_kill_9_several_times_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    specs, planned = rule_models(tmp_path)
    store = tmp_path / "runs.sqlite"
    cmd = [*CLINSIM, *args(specs, store, "crash")]
    rng = random.Random(20261122)
    kept: dict[str, Any] = {}
    kills = 0
    for _ in range(KILLS):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # a random moment: after a random number of further episodes is stored, plus a
        # random fraction of a second, so kills land during calls, between them and in commits
        target = stored(store) + rng.randint(1, 4)
        deadline = time.monotonic() + 60
        while stored(store) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.3))
        if proc.poll() is not None:
            break  # it finished first; nothing left to interrupt
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        with RunStore(store) as st:
            assert st.integrity() == "ok"
            now = {r.key: r for r in st.episodes("crash")}
        for key, row in kept.items():  # finished episodes are never written again
            assert now[key].result == row.result and now[key].finished_at == row.finished_at
        assert len(now) >= len(kept)
        kept = now
    assert kills >= 2, "the batch finished before it could be killed twice"
    assert len(kept) < planned

    resumed = clinsim(*args(specs, store, "crash"))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(kept)} already in the store" in resumed.stdout
    with RunStore(store) as st:
        assert st.integrity() == "ok"
        final = {r.key: r for r in st.episodes("crash")}
        rows = st.db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0]
    assert len(final) == rows == planned  # every planned episode exactly once
    assert all(r.status == "done" and r.attempts == 1 for r in final.values())

    clean = tmp_path / "clean.sqlite"
    uninterrupted = clinsim(*args(specs, clean, "clean"))
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    a, b = report(store, "crash"), report(clean, "clean")
    assert comparable(a) == comparable(b)
    assert a["scored"] == planned and a["failed"] == 0
