"""The scenario browser: search and filters, the detail pane; and the 'clinsim tui' command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from textual.widgets import DataTable, Select

from scenarios import ScenarioLibrary
from tests.simulator.test_cli import clinsim, one_line_error
from tests.tui.conftest import SCENARIO, app_for, until
from tui.screens.browser import BrowserScreen, SetupScreen, matches


def test_search_terms_and_field_filters() -> None:
    lib = ScenarioLibrary.load()
    chest = lib.get(SCENARIO)
    assert matches(chest, "")
    assert matches(chest, "CHEST fam:tri lang:en dim:smartserv spec:cardio")
    assert not matches(chest, "fam:followup")
    assert not matches(chest, "chest ankle")
    zh = [s for s in lib if matches(s, "lang:zh")]
    assert zh and all(s.language.startswith("zh") for s in zh)
    assert len([s for s in lib if matches(s, "dim:smartcare")]) == len(
        lib.select(dimension="SmartCare")
    )


async def test_browser_filters_the_table_and_shows_case_facts_and_rubric(services) -> None:
    app = app_for(services())
    lib = ScenarioLibrary.load()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, BrowserScreen)
        table = screen.query_one("#scenarios", DataTable)
        assert table.row_count == len(lib)
        await pilot.press("slash", *"fam:triage lang:en")
        expected = [s.id for s in lib if s.family.value == "triage" and s.language == "en"]
        assert [table.get_row_at(i)[2] for i in range(table.row_count)] == expected
        count = str(screen.query_one("#count").render())
        assert count == f"{len(expected)} of {len(lib)} scenarios"
        await pilot.press("enter")  # back to the table
        assert table.has_focus
        target = expected.index(SCENARIO)
        for _ in range(target):
            await pilot.press("down")
        detail = str(screen.query_one("#detail").render())
        chest = lib.get(SCENARIO)
        assert chest.title in detail and "not physician-validated" in detail
        assert all(f.text[:30] in detail.replace("\n", " ") for f in chest.case.facts[:3])
        assert chest.rubric[0].criterion[:30] in detail.replace("\n", " ")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SetupScreen))
        personas = app.screen.query_one("#persona", Select)
        assert personas.value == next(iter(app.services.personas)).id
        await pilot.press("escape")
        assert isinstance(app.screen, BrowserScreen)
        await pilot.press("slash", *"no such thing")
        assert table.row_count == 0 and "no scenario matches" in str(
            screen.query_one("#detail").render()
        )


def test_tui_command_help_and_bad_input(tmp_path: Path) -> None:
    proc = clinsim("tui", "--help")
    assert proc.returncode == 0 and "review" in proc.stdout
    one_line_error(clinsim("tui", "r1", "--store", str(tmp_path / "none.sqlite")), "no run store")
    one_line_error(clinsim("tui", "--judge-mode", "both"), "unknown judge mode 'both'")


def test_the_cli_does_not_import_textual_until_the_tui_starts() -> None:
    code = "import sys, simulator.cli; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
