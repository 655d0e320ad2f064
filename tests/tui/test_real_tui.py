"""One live episode in the TUI on the embedded model (SmolLM2 by llama.cpp), both roles."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.schemas import EpisodeResult
from tests.tui.conftest import SCENARIO, MessageLog, app_for
from tui.episode_setup import EpisodeSetup
from tui.messages import EpisodeFinished
from tui.screens.episode import EpisodeScreen
from tui.widgets.facts import FactsPanel
from tui.widgets.transcript import TranscriptView


@pytest.mark.model
async def test_live_episode_on_the_embedded_model(services, tmp_path: Path) -> None:
    svc = services(clinician="local:smollm2", patient="local:smollm2")
    app, log = app_for(svc), MessageLog()
    async with app.run_test(size=(80, 24)) as pilot:
        setup = EpisodeSetup(
            scenario=svc.scenarios.get(SCENARIO), persona_id="calm-adult",
            clinician="local:smollm2", patient="local:smollm2", judge="", seed=0, max_turns=2,
        )  # fmt: skip
        log.install()  # the screen is opened here, not by the app: hook it from this task
        await app.push_screen(EpisodeScreen(svc, setup))
        screen = app.screen
        await log.wait(pilot, EpisodeFinished, what="end")
        shown = [v.turn for v in screen.query_one("#transcript", TranscriptView).views.values()]
        disclosed = list(screen.query_one("#facts", FactsPanel).disclosed)
    [path] = (tmp_path / "episodes").glob("*.json")
    result = EpisodeResult.model_validate_json(path.read_text())
    model_turns = [t for t in result.transcript.turns if t.source == "model"]
    assert model_turns and all(t.content.strip() for t in model_turns)
    assert all(t.call is not None and t.call.completion_tokens > 0 for t in model_turns)
    assert shown == result.transcript.turns
    assert disclosed == result.transcript.disclosed
