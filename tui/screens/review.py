"""Stored runs: the list of runs, a run's episodes, and the review of one episode, where a
reviewer agrees with or overrides each verdict. Reviews go to the run store's ``reviews``
table, which ``clinsim judge calibrate --run`` reads as human labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from scenarios import Scenario
from simulator.report import critical_failures
from simulator.schemas import EpisodeResult, Verdict
from simulator.store import EpisodeRow
from tui.nav import app_of
from tui.services import Services
from tui.widgets.transcript import TranscriptView
from tui.widgets.verdicts import STATUS_STYLE, review_label, score_text, verdict_detail


class RunsScreen(Screen[None]):
    """The runs in the store; open one to review it or to follow its progress."""

    BINDINGS = [
        Binding("enter", "review", "Review"),
        Binding("d", "dashboard", "Dashboard"),
        Binding("b", "batch", "New batch"),
        Binding("g", "reload", "Reload"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.names: list[str] = []

    def compose(self) -> ComposeResult:
        yield Label(f"Runs in {self.services.store_path.name}", id="title")
        yield DataTable(cursor_type="row", id="runs", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.add_columns("run", "created", "planned", "done", "failed", "reviews")
        self.action_reload()
        table.focus()

    def action_reload(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.clear()
        self.names = []
        store = app_of(self).run_store()
        if store is None:
            return
        for info in store.runs():
            statuses = store.statuses(info.name)
            done = sum(1 for s, _ in statuses.values() if s == "done")
            table.add_row(
                info.name, info.created_at[:16].replace("T", " "), str(info.planned),
                str(done), str(len(statuses) - done), str(len(store.reviews(info.name))),
                key=info.name,
            )  # fmt: skip
            self.names.append(info.name)

    def current(self) -> str | None:
        table = self.query_one("#runs", DataTable)
        if not self.names:
            self.notify("no runs in the store yet; press b to start a batch", severity="warning")
            return None
        return self.names[min(max(table.cursor_row, 0), len(self.names) - 1)]

    @on(DataTable.RowSelected, "#runs")
    def action_review(self) -> None:
        name = self.current()
        if name is not None:
            self.app.push_screen(ReviewScreen(self.services, name))

    def action_dashboard(self) -> None:
        name = self.current()
        if name is not None:
            app_of(self).open_dashboard(name)

    def action_batch(self) -> None:
        app_of(self).new_batch()

    def on_screen_resume(self) -> None:
        self.action_reload()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()


class ReviewScreen(Screen[None]):
    """A run's episodes with their scores, critical failures and how many verdicts you
    reviewed."""

    BINDINGS = [
        Binding("enter", "open", "Review episode"),
        Binding("d", "dashboard", "Dashboard"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, services: Services, run: str) -> None:
        super().__init__()
        self.services = services
        self.run_name = run
        self.keys: list[str] = []

    def compose(self) -> ComposeResult:
        yield Label(f"Run {self.run_name}", id="title")
        yield DataTable(cursor_type="row", id="episodes", zebra_stripes=True)
        yield Label("", id="summary")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#episodes", DataTable)
        table.add_columns("scenario", "persona", "clinician", "#", "score", "crit", "reviewed")
        self.reload()
        table.focus()

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        table = self.query_one("#episodes", DataTable)
        row_before = table.cursor_row
        table.clear()
        self.keys = []
        store = app_of(self).run_store()
        if store is None:
            return
        if store.run(self.run_name) is None:
            known = ", ".join(r.name for r in store.runs()) or "none"
            self.query_one("#summary", Label).update(
                f"no run {self.run_name!r} in the store (runs: {known})"
            )
            return
        rows = store.episodes(self.run_name)
        mine: dict[str, int] = {}
        for rv in store.reviews(self.run_name):
            if rv["reviewer"] == self.services.reviewer:
                mine[rv["key"]] = mine.get(rv["key"], 0) + 1
        failures = 0
        for row in rows:
            result = row.result_obj()
            crit = critical_failures(row, result.verdicts) if result else []
            failures += bool(crit)
            table.add_row(
                row.scenario_id, row.persona_id, row.clinician, str(row.trial), score_text(row),
                Text(f"{len(crit)} FAIL", style="bold red") if crit else "",
                f"{mine.get(row.key, 0)}/{len(row.rubric)}",
                key=row.key,
            )  # fmt: skip
            self.keys.append(row.key)
        self.query_one("#summary", Label).update(
            f"{len(rows)} episodes · {failures} with critical failures · reviewer "
            f"{self.services.reviewer}"
        )
        if self.keys:
            table.move_cursor(row=min(max(row_before, 0), len(self.keys) - 1))

    @on(DataTable.RowSelected, "#episodes")
    def action_open(self) -> None:
        if not self.keys:
            return
        row = self.query_one("#episodes", DataTable).cursor_row
        self.app.push_screen(
            EpisodeReviewScreen(self.services, self.run_name, self.keys, max(row, 0))
        )

    def action_dashboard(self) -> None:
        app_of(self).open_dashboard(self.run_name)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()


class NoteScreen(ModalScreen[str | None]):
    """A reviewer's note on one verdict."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, criterion_id: str, note: str) -> None:
        super().__init__()
        self.criterion_id = criterion_id
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(id="note-box"):
            yield Label(f"Note on {self.criterion_id} (Enter saves, Escape cancels)")
            yield Input(self.note, id="note", compact=True)
        yield Footer()

    @on(Input.Submitted, "#note")
    def _save(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class EpisodeReviewScreen(Screen[None]):
    """One stored episode: its transcript, and the rubric with each verdict. Selecting a
    verdict highlights the turns it cites; the reviewer agrees, marks met / not met, and
    adds a note."""

    BINDINGS = [
        Binding("a", "agree", "Agree"),
        Binding("m", "mark('met')", "Met"),
        Binding("u", "mark('not_met')", "Not met"),
        Binding("x", "clear", "Clear"),
        Binding("n", "note", "Note"),
        Binding("tab", "focus_next", "Switch pane", show=False),
        Binding("f", "fork", "Fork"),
        Binding("left_square_bracket", "move(-1)", "Prev"),
        Binding("right_square_bracket", "move(1)", "Next"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, services: Services, run: str, keys: list[str], index: int) -> None:
        super().__init__()
        self.services = services
        self.run_name = run
        self.keys = keys
        self.index = index
        self.row: EpisodeRow | None = None
        self.result: EpisodeResult | None = None
        self.scenario: Scenario | None = None
        self.criteria: dict[str, str] = {}
        self.verdicts: list[Verdict] = []
        self.mine: dict[str, Mapping[str, Any]] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Horizontal():
            yield TranscriptView(id="transcript")
            with Vertical(id="rubric-pane"):
                yield DataTable(cursor_type="row", id="rubric")
                with VerticalScroll(id="verdict-pane"):
                    yield Static(id="verdict")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#rubric", DataTable)
        table.add_column("judge", key="judge")
        table.add_column("you", key="you")
        table.add_column("pts", key="pts")
        table.add_column("criterion", key="criterion")
        self.load()
        table.focus()

    def load(self) -> None:
        store = app_of(self).run_store()
        if store is None:
            return
        key = self.keys[self.index]
        self.row = store.episode(self.run_name, key)
        self.mine = {
            rv["criterion_id"]: rv
            for rv in store.reviews(self.run_name)
            if rv["key"] == key and rv["reviewer"] == self.services.reviewer
        }
        row = self.row
        self.result = row.result_obj() if row is not None else None
        self.scenario = None
        if row is not None and row.scenario_id in self.services.scenarios:
            self.scenario = self.services.scenarios.get(row.scenario_id)
        self.criteria = {c.id: c.criterion for c in self.scenario.rubric} if self.scenario else {}
        self.verdicts = list(self.result.verdicts) if self.result else []
        view = self.query_one("#transcript", TranscriptView)
        view.set_turns(self.result.transcript.turns if self.result else [])
        table = self.query_one("#rubric", DataTable)
        table.clear()
        for v in self.verdicts:
            table.add_row(
                Text(v.status, style=STATUS_STYLE[v.status]), self._mine(v.criterion_id),
                f"{v.points:+d}", v.criterion_id, key=v.criterion_id,
            )  # fmt: skip
        self.refresh_status()
        if self.verdicts:
            table.move_cursor(row=0)
            self.show_verdict(self.verdicts[0])
        else:
            why = "it failed before a verdict" if row and row.status == "failed" else "not judged"
            message = (row.failure_message or "") if row else "episode not found"
            self.query_one("#verdict", Static).update(f"No verdicts: {why}. {message}")

    def _mine(self, criterion_id: str) -> Text:
        return review_label(self.mine.get(criterion_id))

    def refresh_status(self) -> None:
        row = self.row
        text = Text(no_wrap=True, overflow="ellipsis")
        if row is None:
            text.append("episode not found", style="bold red")
        else:
            text.append(f"{row.scenario_id}", style="bold")
            text.append(f" · {row.persona_id} · {row.clinician} · trial {row.trial}\n")
            crit = critical_failures(row, self.verdicts)
            text.append(f"score {score_text(row)} · ")
            text.append(
                f"critical FAIL: {', '.join(crit)}" if crit else "no critical failure",
                style="bold red" if crit else "green",
            )
            done = sum(1 for v in self.verdicts if v.criterion_id in self.mine)
            text.append(f" · reviewed {done}/{len(self.verdicts)}")
            text.append(f" · episode {self.index + 1}/{len(self.keys)}", style="dim")
        self.query_one("#status", Static).update(text)

    def current(self) -> Verdict | None:
        table = self.query_one("#rubric", DataTable)
        if not self.verdicts:
            return None
        return self.verdicts[min(max(table.cursor_row, 0), len(self.verdicts) - 1)]

    def show_verdict(self, v: Verdict) -> None:
        text = verdict_detail(v, self.criteria, self.mine.get(v.criterion_id))
        self.query_one("#verdict", Static).update(text)
        self.query_one("#transcript", TranscriptView).highlight(v.evidence_turns)

    @on(DataTable.RowHighlighted, "#rubric")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        v = next((x for x in self.verdicts if x.criterion_id == event.row_key.value), None)
        if v is not None:
            self.show_verdict(v)

    # ------------------------------------------------------------------ reviewing

    def _save(self, v: Verdict, human_status: str, note: str | None = None) -> None:
        store = app_of(self).run_store()
        if store is None or self.row is None:
            return
        old = self.mine.get(v.criterion_id)
        note = note if note is not None else (old["note"] if old else "")
        store.save_review(
            self.run_name, self.row.key, v.criterion_id, reviewer=self.services.reviewer,
            judge_status=v.status, human_status=human_status, note=note,
            criterion=self.criteria.get(v.criterion_id, ""),
        )  # fmt: skip
        self.mine[v.criterion_id] = {
            "criterion_id": v.criterion_id, "judge_status": v.status,
            "human_status": human_status, "note": note,
        }  # fmt: skip
        self._after_change(v)

    def _after_change(self, v: Verdict) -> None:
        table = self.query_one("#rubric", DataTable)
        table.update_cell(v.criterion_id, "you", self._mine(v.criterion_id), update_width=True)
        self.show_verdict(v)
        self.refresh_status()

    def action_agree(self) -> None:
        v = self.current()
        if v is None:
            return
        if v.status == "unscored":
            self.notify("the judge left this unscored: mark it met (m) or not met (u)")
            return
        self._save(v, v.status)
        self._next_row()

    def action_mark(self, status: str) -> None:
        v = self.current()
        if v is not None:
            self._save(v, status)
            self._next_row()

    def _next_row(self) -> None:
        table = self.query_one("#rubric", DataTable)
        if table.cursor_row < len(self.verdicts) - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_clear(self) -> None:
        v = self.current()
        store = app_of(self).run_store()
        if v is None or store is None or self.row is None:
            return
        store.delete_review(
            self.run_name, self.row.key, v.criterion_id, reviewer=self.services.reviewer
        )
        self.mine.pop(v.criterion_id, None)
        self._after_change(v)

    def action_note(self) -> None:
        v = self.current()
        if v is None:
            return
        rv = self.mine.get(v.criterion_id)
        if rv is None:
            self.notify("agree (a) or mark (m/u) the verdict first, then add a note")
            return

        def done(note: str | None) -> None:
            if note is not None:
                self._save(v, rv["human_status"], note)

        self.app.push_screen(NoteScreen(v.criterion_id, rv["note"]), done)

    def action_move(self, step: int) -> None:
        new = self.index + step
        if 0 <= new < len(self.keys):
            self.index = new
            self.load()

    def action_fork(self) -> None:
        if self.result is None or self.scenario is None:
            self.notify("this episode cannot be forked (no transcript or scenario)")
            return
        app_of(self).open_fork(self.scenario, self.result)

    def action_back(self) -> None:
        self.app.pop_screen()
