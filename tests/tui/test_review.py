"""Reviewing a stored run in the TUI: episodes with scores and critical failures, verdicts
that highlight their evidence turns, agree / override / note saved in the run store, and
'clinsim judge calibrate --run' reading those reviews as human labels."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import DataTable

from simulator.store import RunStore
from tests.simulator.conftest import write
from tests.simulator.test_cli import clinsim, one_line_error
from tests.tui.conftest import REVIEW_SCENARIOS, app_for, store_run, until
from tui.screens.review import EpisodeReviewScreen, NoteScreen, ReviewScreen, RunsScreen
from tui.widgets.transcript import TranscriptView


def roles(tmp_path: Path) -> dict[str, str]:
    # evidence: odd criteria cite turn 2 (the clinician's), even ones turn 1 (the opening)
    reply = json.dumps(
        {
            f"c{i}": {"criteria_met": i % 2 == 0, "evidence_turns": [2 - (i % 2 == 0)],
                      "explanation": f"reason {i}"}
            for i in range(1, 16)
        }
    )  # fmt: skip
    return {
        "clinician": write(tmp_path / "c.yaml", ["Please call an ambulance now."] * 9),
        "patient": write(tmp_path / "p.yaml", ["OK, I will."] * 9),
        "judge": write(tmp_path / "j.yaml", [reply] * 9),
    }


def evidence_shown(screen: EpisodeReviewScreen) -> set[int]:
    view = screen.query_one("#transcript", TranscriptView)
    return {i for i, v in view.views.items() if v.has_class("evidence")}


async def test_review_flow_saves_reviews_that_calibrate_reads(services, tmp_path: Path) -> None:
    specs = roles(tmp_path)
    svc = services(**specs)
    await store_run(svc.store_path, "r1", specs)
    app = app_for(svc, run="r1")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen))
        table = app.screen.query_one("#episodes", DataTable)
        assert table.row_count == len(REVIEW_SCENARIOS)
        # the scripted judge fails critical criteria: the list says so
        assert "FAIL" in str(table.get_row_at(0)[5])
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, EpisodeReviewScreen))
        screen = app.screen
        first, second = screen.verdicts[0], screen.verdicts[1]
        assert evidence_shown(screen) == set(first.evidence_turns) == {2}
        assert "reason 1" in str(screen.query_one("#verdict").render())
        await pilot.press("a")  # agree with c1, and move to c2
        assert evidence_shown(screen) == set(second.evidence_turns) == {1}
        await pilot.press("u" if second.status == "met" else "m")  # override c2
        await pilot.press("up")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NoteScreen))
        await pilot.press(*"too generous", "enter")
        await until(pilot, lambda: app.screen is screen)
        assert "too generous" in str(screen.query_one("#verdict").render())
        assert "reviewed 2/" in str(screen.query_one("#status").render())
        key, texts = screen.row.key, dict(screen.criteria)
        await pilot.press("right_square_bracket")
        assert screen.row.key != key
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen))
        assert str(app.screen.query_one("#episodes", DataTable).get_row(key)[6]).startswith("2/")

    with RunStore(svc.store_path) as st:
        reviews = {r["criterion_id"]: r for r in st.reviews("r1")}
    assert set(reviews) == {first.criterion_id, second.criterion_id}
    c1, c2 = reviews[first.criterion_id], reviews[second.criterion_id]
    assert c1["human_status"] == c1["judge_status"] == first.status
    assert c2["human_status"] != c2["judge_status"] == second.status
    assert c2["note"] == "too generous" and c2["reviewer"] == "dr-test"
    assert c1["criterion"] == texts[first.criterion_id] != ""

    # calibrate reads the reviews as labels; the same scripted judge agrees on c1 only
    proc = clinsim(
        "judge", "calibrate", "--run", "r1", "--store", str(svc.store_path),
        "--judge", specs["judge"], "--mode", "batched", "--json",
        "--save", str(tmp_path / "pred.jsonl"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["labels"].endswith("runs.sqlite#r1")
    assert report["human_labels"] == 2 and report["items"] == 1
    assert report["n"] == 2 and report["accuracy"] == 0.5
    saved = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    human = {p["criterion"]: p["human"] for p in saved}
    assert human == {first.criterion_id: {"dr-test": first.status == "met"},
                     second.criterion_id: {"dr-test": second.status != "met"}}  # fmt: skip


async def test_clearing_a_review_removes_it(services, tmp_path: Path) -> None:
    specs = roles(tmp_path)
    svc = services(**specs)
    await store_run(svc.store_path, "r1", specs, scenarios=REVIEW_SCENARIOS[:1])
    app = app_for(svc, run="r1")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, EpisodeReviewScreen))
        await pilot.press("m", "up", "x")
    with RunStore(svc.store_path) as st:
        assert st.reviews("r1") == []


def test_calibrate_from_a_run_refuses_bad_input(tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite"
    one_line_error(
        clinsim("judge", "calibrate", "--run", "r1", "--store", str(store)), "no run store"
    )
    RunStore(store).close()
    one_line_error(
        clinsim("judge", "calibrate", "--run", "r1", "--store", str(store)), "no run 'r1'"
    )
    one_line_error(clinsim("judge", "calibrate"), "either --labels FILE or --run NAME")


async def test_a_run_without_reviews_is_refused_by_calibrate(services, tmp_path: Path) -> None:
    specs = roles(tmp_path)
    svc = services(**specs)
    await store_run(svc.store_path, "r1", specs, scenarios=REVIEW_SCENARIOS[:1])
    proc = clinsim("judge", "calibrate", "--run", "r1", "--store", str(svc.store_path))
    one_line_error(proc, "has no reviews yet", "clinsim tui r1")


async def test_runs_screen_lists_runs_and_opens_review(services, tmp_path: Path) -> None:
    specs = roles(tmp_path)
    svc = services(**specs)
    await store_run(svc.store_path, "r1", specs, scenarios=REVIEW_SCENARIOS[:1])
    await store_run(svc.store_path, "r2", specs)
    app = app_for(svc)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        table = app.screen.query_one("#runs", DataTable)
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == ["r1", "r2"]
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen))
        assert app.screen.run_name == "r2"


def test_old_stores_get_the_review_criterion_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE reviews (run TEXT NOT NULL, key TEXT NOT NULL, criterion_id TEXT NOT NULL,"
        " reviewer TEXT NOT NULL, judge_status TEXT NOT NULL, human_status TEXT NOT NULL,"
        " note TEXT NOT NULL DEFAULT '', reviewed_at TEXT NOT NULL,"
        " PRIMARY KEY (run, key, criterion_id, reviewer))"
    )
    db.commit()
    db.close()
    with RunStore(path) as st:
        st.save_review("r", "k", "c1", reviewer="a", judge_status="met", human_status="met",
                       criterion="Asks about onset")  # fmt: skip
        assert st.reviews("r")[0]["criterion"] == "Asks about onset"
