"""SVG snapshots of each screen at 80x24 (pytest-textual-snapshot). After a deliberate
change of the UI, look at the new pictures and accept them with
``python -m pytest tests/tui/test_snapshots.py --snapshot-update``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.simulator.conftest import write
from tests.tui.conftest import SCENARIO, MessageLog, app_for, store_run, until
from tests.tui.test_review import roles
from tui.episode_setup import EpisodeSetup
from tui.messages import EpisodeFinished
from tui.screens.dashboard import DashboardScreen
from tui.screens.episode import EpisodeScreen
from tui.screens.review import EpisodeReviewScreen

SIZE = (80, 24)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path, so scripted specs are short relative paths the pictures can show."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def relative(specs: dict[str, str], root: Path) -> dict[str, str]:
    return {k: v.replace(f"{root}/", "") for k, v in specs.items()}


def test_browser(snap_compare, services) -> None:
    app = app_for(services())
    assert snap_compare(app, terminal_size=SIZE, press=["slash", *"chest", "enter"])


def test_setup_dialog(snap_compare, services) -> None:
    app = app_for(services(clinician="openai:model-under-test", patient="local:smollm2"))
    assert snap_compare(app, terminal_size=SIZE, press=["slash", *"chest", "enter", "enter"])


def test_live_episode(snap_compare, services, here: Path) -> None:
    specs = relative(
        {
            "clinician": write(here / "c.yaml", ["Does the pain spread anywhere?"] * 9),
            "patient": write(here / "p.yaml", ["Yes, to my left arm and jaw."] * 9),
        },
        here,
    )
    svc = services(**specs)
    app = app_for(svc)

    async def run_episode(pilot) -> None:
        setup = EpisodeSetup(
            scenario=svc.scenarios.get(SCENARIO), persona_id="calm-adult", judge="", seed=0,
            max_turns=2, **specs,
        )  # fmt: skip
        log = MessageLog()
        log.install()
        await app.push_screen(EpisodeScreen(svc, setup))
        await log.wait(pilot, EpisodeFinished, what="episode end")
        # notify() posts a message: wait for the "saved" toast to be shown before clearing
        # it, or it can arrive after the clear and end up in the picture.
        await until(pilot, lambda: bool(app.screen.query("Toast")), what="the 'saved' toast")
        app.clear_notifications()
        await until(pilot, lambda: not app.screen.query("Toast"), what="toasts cleared")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_episode)


def test_episode_review(snap_compare, services, here: Path) -> None:
    specs = relative(roles(here), here)
    svc = services(**specs)
    asyncio.run(store_run(svc.store_path, "r1", specs))
    app = app_for(svc, run="r1")

    async def open_episode(pilot) -> None:
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, EpisodeReviewScreen))
        await pilot.press("a", "m")

    assert snap_compare(app, terminal_size=SIZE, run_before=open_episode)


def test_dashboard(snap_compare, services, here: Path) -> None:
    specs = relative(roles(here), here)
    svc = services(**specs)
    asyncio.run(store_run(svc.store_path, "r1", specs))
    app = app_for(svc)

    async def open_dashboard(pilot) -> None:
        await app.push_screen(DashboardScreen(svc, "r1"))
        await until(pilot, lambda: "stored" in str(app.screen.query_one("#progress-text").render()))

    assert snap_compare(app, terminal_size=SIZE, run_before=open_dashboard)
