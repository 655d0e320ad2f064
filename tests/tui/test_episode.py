"""Live episodes in the TUI on the scripted backend: streaming, the facts panel, pause, step
and stop, taking part as the patient or the clinician, and forking with another clinician."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from scenarios import ScenarioLibrary
from simulator.schemas import EpisodeResult
from tests.simulator.conftest import batched_reply, write
from tests.tui.conftest import SCENARIO, MessageLog, app_for, until
from tui.messages import EpisodeFinished, InputRequested, JudgingStarted, NextTurn, TurnAdded
from tui.screens.browser import BrowserScreen, SetupScreen
from tui.screens.episode import EpisodeScreen
from tui.screens.fork import CompareScreen
from tui.widgets.facts import FactsPanel
from tui.widgets.transcript import TranscriptView

PATIENT = "It started two hours ago and spreads to my left arm and jaw."
CLINICIAN = "How long has it lasted, and does it spread anywhere?"


async def open_setup(pilot, query: str = SCENARIO) -> SetupScreen:
    app = pilot.app
    assert isinstance(app.screen, BrowserScreen)
    await pilot.press("slash", *query, "enter", "enter")
    await until(pilot, lambda: isinstance(app.screen, SetupScreen), what="set-up dialog")
    return app.screen


def saved_results(folder: Path) -> list[EpisodeResult]:
    return [EpisodeResult.model_validate_json(p.read_text()) for p in folder.glob("*.json")]


async def test_live_episode_streams_turns_and_ticks_off_facts(services, tmp_path: Path) -> None:
    svc = services(
        clinician=write(tmp_path / "c.yaml", [CLINICIAN] * 20),
        patient=write(tmp_path / "p.yaml", [PATIENT] * 20),
        judge=write(tmp_path / "j.yaml", [batched_reply()] * 3),
    )
    app, log = app_for(svc), MessageLog()
    async with app.run_test(size=(80, 24), message_hook=log) as pilot:
        setup = await open_setup(pilot)
        setup.query_one("#max-turns", Input).value = "3"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
        screen = app.screen
        finished = await log.wait(pilot, EpisodeFinished, what="episode end")
        assert screen.state == "ended: max_turns"
        assert log.of(JudgingStarted) and screen.live.result is finished.result
        views = list(screen.query_one("#transcript", TranscriptView).views.values())
        assert [v.turn.role for v in views][-2:] == ["patient", "clinician"]
        assert sum(v.turn.role == "clinician" for v in views) == 3
        assert {"patient", "clinician"} <= {c for v in views for c in v.classes}
        [result] = saved_results(tmp_path / "episodes")
        assert [t.content for t in result.transcript.turns] == [v.turn.content for v in views]
        # the panel ticked exactly the facts the episode disclosed, red flags among them
        facts = screen.query_one("#facts", FactsPanel)
        assert facts.disclosed == result.transcript.disclosed != []
        scenario = ScenarioLibrary.load().get(SCENARIO)
        assert any(f.red_flag for f in scenario.case.facts if f.id in facts.disclosed)
        assert f"Hidden facts {len(facts.disclosed)}/{len(scenario.case.facts)}" in str(
            facts.render()
        )
        assert result.score is not None and len(result.verdicts) == len(scenario.rubric)
        assert "score " in str(screen.query_one(".outcome").render())


async def test_pause_holds_the_episode_step_runs_one_turn_stop_ends_it(
    services, tmp_path: Path
) -> None:
    slow = [{"text": CLINICIAN, "delay_s": 0.2}] * 40
    svc = services(
        clinician=write(tmp_path / "c.yaml", slow),
        patient=write(tmp_path / "p.yaml", [{"text": "Yes.", "delay_s": 0.2}] * 40),
        judge="",
    )
    app, log = app_for(svc), MessageLog()
    async with app.run_test(size=(80, 24), message_hook=log) as pilot:
        setup = await open_setup(pilot)
        setup.query_one("#judge", Input).value = ""
        setup.query_one("#max-turns", Input).value = "15"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
        screen = app.screen
        await log.wait(pilot, TurnAdded, count=2, what="first turns")
        mark = log.mark()
        await pilot.press("space")
        assert screen.state == "paused"
        # the call in flight lands; then the episode waits at the gate, and nothing more
        await log.wait(pilot, NextTurn, since=mark, where=lambda m: m.held, what="the hold")
        held = len(screen.turns)
        await pilot.pause(1.0)
        assert len(screen.turns) == held
        mark = log.mark()
        await pilot.press("n")
        await log.wait(pilot, TurnAdded, since=mark, what="one step")
        await log.wait(pilot, NextTurn, since=mark, where=lambda m: m.held, what="the hold")
        assert len(screen.turns) == held + 1
        await pilot.pause(1.0)
        assert len(screen.turns) == held + 1 and screen.state == "paused"
        await pilot.press("s")
        await log.wait(pilot, EpisodeFinished, what="stop")
        assert screen.state == "ended: stopped_by_user"
        assert len(screen.turns) <= held + 2
    [result] = saved_results(tmp_path / "episodes")
    assert result.transcript.termination.value == "stopped_by_user"


@pytest.mark.parametrize("role", ["patient", "clinician"])
async def test_a_person_takes_part(services, tmp_path: Path, role: str) -> None:
    other = "clinician" if role == "patient" else "patient"
    svc = services(
        **{other: write(tmp_path / "o.yaml", [CLINICIAN if other == "clinician" else PATIENT] * 9)},
        **{role: write(tmp_path / "unused.yaml", ["never used"])},
        judge="",
    )
    app, log = app_for(svc), MessageLog()
    async with app.run_test(size=(80, 24), message_hook=log) as pilot:
        setup = await open_setup(pilot)
        setup.query_one("#play").value = role
        setup.query_one("#judge", Input).value = ""
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
        screen = app.screen
        reply = screen.query_one("#reply", Input)
        mine = PATIENT if role == "patient" else CLINICIAN
        for n in range(1, 3):
            asked = await log.wait(pilot, InputRequested, count=n, what="my turn")
            assert asked.role == role and screen.state == f"your turn ({role})"
            assert reply.display and reply.has_focus
            reply.value = mine
            await pilot.press("enter")
            await log.wait(
                pilot, TurnAdded, count=n, where=lambda m: m.turn.source == "human", what="sent"
            )
            assert sum(t.source == "human" for t in screen.turns) == n
        await log.wait(pilot, InputRequested, count=3, what="my turn")
        assert screen.state == f"your turn ({role})"
        await pilot.press("enter")  # an empty reply stops the episode
        await log.wait(pilot, EpisodeFinished, what="stop")
        assert screen.state == "ended: stopped_by_user"
        if role == "patient":
            assert screen.query_one("#facts", FactsPanel).disclosed
    [result] = saved_results(tmp_path / "episodes")
    humans = [t for t in result.transcript.turns if t.source == "human"]
    assert len(humans) == 2 and {t.role for t in humans} == {role}
    assert all(t.content == mine for t in humans)
    assert result.transcript.models[role].spec == "human"


async def test_fork_continues_with_another_clinician_and_shows_both(
    services, tmp_path: Path
) -> None:
    svc = services(
        clinician=write(tmp_path / "c.yaml", [CLINICIAN] * 20),
        patient=write(tmp_path / "p.yaml", [PATIENT] * 40),
        judge=write(tmp_path / "j.yaml", [batched_reply()]),
    )
    other = write(tmp_path / "other.yaml", ["Call an ambulance now, do not drive yourself."] * 20)
    app, log = app_for(svc), MessageLog()
    async with app.run_test(size=(80, 24), message_hook=log) as pilot:
        setup = await open_setup(pilot)
        setup.query_one("#max-turns", Input).value = "3"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
        await log.wait(pilot, EpisodeFinished, what="episode end")
        assert app.screen.state.startswith("ended")
        original = app.screen.live.result
        await pilot.press("f")
        await until(pilot, lambda: app.screen.query("#fork-clinician"), what="fork dialog")
        app.screen.query_one("#at-turn", Input).value = "2"
        app.screen.query_one("#fork-clinician", Input).value = other
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare = app.screen
        await log.wait(pilot, EpisodeFinished, count=2, what="branch end")
        branch = compare.branch
        assert branch is not None
        status = str(compare.query_one("#status").render())
        left = [v.turn for v in compare.query_one("#left", TranscriptView).views.values()]
        right = [v.turn for v in compare.query_one("#right", TranscriptView).views.values()]
    assert branch.transcript.forked_from == f"{original.transcript.episode_id}@2"
    assert branch.transcript.turns[:2] == original.transcript.turns[:2]
    assert [t.index for t in left] == [t.index for t in original.transcript.turns[2:]]
    assert right and all(t.index > 2 for t in right)
    assert {t.content for t in right if t.role == "clinician"} == {
        "Call an ambulance now, do not drive yourself."
    }
    assert branch.transcript.models["clinician"].spec == other
    assert branch.score is not None
    assert f"score original {original.score:.2f} · branch {branch.score:.2f}" in status
    assert len(saved_results(tmp_path / "episodes")) == 2


async def test_a_bad_model_spec_is_one_clear_message_not_a_crash(services, tmp_path) -> None:
    svc = services(clinician="gpt4", patient=write(tmp_path / "p.yaml", [PATIENT]), judge="")
    app = app_for(svc)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_setup(pilot)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
        await until(pilot, lambda: app.screen.state == "cannot start")
        assert "unknown model spec 'gpt4'" in app.screen.error
        assert app.screen.error.startswith("clinician: ")
        await pilot.press("escape")
        assert isinstance(app.screen, BrowserScreen)
    assert not (tmp_path / "episodes").exists()
