"""The run dashboard: it follows a batch running in another process on the same store, and
starts one from the UI; per-axis and per-family charts come from the stored episodes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from textual.widgets import Input, ProgressBar

from tests.simulator.conftest import batched_reply, write
from tests.simulator.test_cli import CLINSIM
from tests.tui.conftest import app_for, until
from tui.screens.dashboard import BatchScreen, DashboardScreen
from tui.screens.review import ReviewScreen, RunsScreen

SCENARIOS = ["triage-indigestion-chest-pain", "triage-abdominal-pain-appendicitis",
             "triage-headache-stiff-neck-fever"]  # fmt: skip


def text(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLINSIM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


async def test_dashboard_follows_a_batch_running_elsewhere(services, tmp_path: Path) -> None:
    slow = [{"text": "Please call an ambulance now.", "delay_s": 0.7}] * 20
    specs = {
        "clinician": write(tmp_path / "c.yaml", slow),
        "patient": write(tmp_path / "p.yaml", ["OK."] * 20),
        "judge": write(tmp_path / "j.yaml", [batched_reply()] * 20),
    }
    svc = services(**specs)
    args = [a for s in SCENARIOS for a in ("--scenario", s)]
    proc = subprocess.Popen(
        [*CLINSIM, "batch", *args, "--clinician", specs["clinician"], "--patient",
         specs["patient"], "--judge", specs["judge"], "--judge-mode", "batched",
         "--max-turns", "1", "--concurrency", "1", "--run", "live", "--store",
         str(svc.store_path), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        app = app_for(svc)
        async with app.run_test(size=(80, 24)) as pilot:
            await app.push_screen(DashboardScreen(svc, "live", interval=0.1))
            screen = app.screen
            seen: set[str] = set()

            def progress() -> bool:
                body = text(screen, "#progress-text")
                for n in range(len(SCENARIOS) + 1):
                    if f"{n}/{len(SCENARIOS)} stored" in body:
                        seen.add(f"{n}")
                return f"{len(SCENARIOS)}/{len(SCENARIOS)} stored" in body

            await until(
                pilot, lambda: progress() or proc.poll() not in (None, 0), timeout=90,
                what="the batch to finish",
            )  # fmt: skip
            assert proc.poll() in (None, 0), proc.stderr.read() if proc.stderr else ""
            await until(pilot, progress, timeout=10, what="the last episode shown")
            assert len(seen) >= 2, seen  # it saw the run part-way, then complete
            bar = screen.query_one("#progress", ProgressBar)
            assert bar.progress == bar.total == len(SCENARIOS)
            axis = text(screen, "#by-axis")
            assert "By axis" in axis and "accuracy" in axis and "n≤3" in axis
            assert "triage" in text(screen, "#by-family")
            assert "mean score" in text(screen, "#progress-text")
            await pilot.press("v")
            await until(pilot, lambda: isinstance(app.screen, ReviewScreen))
    finally:
        proc.kill()
        proc.wait()


async def test_a_batch_started_from_the_ui(services, tmp_path: Path, home: Path) -> None:
    specs = {
        "clinician": write(tmp_path / "c.yaml", ["Please call an ambulance now."] * 50),
        "patient": write(tmp_path / "p.yaml", ["OK."] * 50),
        "judge": write(tmp_path / "j.yaml", [batched_reply()] * 5),
    }
    app = app_for(services(**specs))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, BatchScreen))
        app.screen.query_one("#b-run", Input).value = "from-ui"
        app.screen.query_one("#b-scenarios", Input).value = SCENARIOS[0]
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        screen = app.screen
        await until(
            pilot, lambda: "1/1 stored" in text(screen, "#progress-text"), timeout=90,
            what="the batch to finish",
        )  # fmt: skip
        job = app.batch_jobs["from-ui"]
        assert job.process.wait(timeout=30) == 0
        assert job.log.parent == home / "logs" and job.log.stat().st_mode & 0o077 == 0


async def test_a_failing_batch_shows_its_error(services, tmp_path: Path, home: Path) -> None:
    app = app_for(services(clinician="gpt4", patient="gpt4", judge=""))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, BatchScreen))
        app.screen.query_one("#b-run", Input).value = "bad"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        screen = app.screen
        await until(
            pilot, lambda: "batch stopped: error: spec: unknown model spec 'gpt4'"
            in text(screen, "#failures"), timeout=60, what="the error line",
        )  # fmt: skip
        assert "not in the store" in text(screen, "#progress-text")
