"""The scenario browser (the start screen) and the episode set-up dialog (which returns an
``EpisodeSetup``)."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Select, Static

from scenarios import Scenario
from tui.episode_setup import EpisodeSetup
from tui.nav import app_of
from tui.services import Services

FILTER_KEYS = {
    "dim": "dimension",
    "dimension": "dimension",
    "fam": "family",
    "family": "family",
    "lang": "language",
    "language": "language",
    "spec": "specialty",
    "specialty": "specialty",
}


def field_value(scenario: Scenario, name: str) -> str:
    value = getattr(scenario, name)
    return str(getattr(value, "value", value)).lower()


def matches(scenario: Scenario, query: str) -> bool:
    """Whether a scenario fits a search: ``key:value`` terms (dim, fam, lang, spec) must
    match the start of that field; other words must appear in the id, title, specialty,
    family, dimension or tags. Case does not matter."""
    haystack = " ".join(
        [scenario.id, scenario.title, scenario.specialty, scenario.family.value,
         scenario.dimension.value, *scenario.tags]
    ).lower()  # fmt: skip
    for term in query.lower().split():
        key, sep, value = term.partition(":")
        if sep and key in FILTER_KEYS:
            if not field_value(scenario, FILTER_KEYS[key]).startswith(value):
                return False
        elif term not in haystack:
            return False
    return True


def scenario_details(s: Scenario) -> Text:
    """The case, what the patient hides, and the rubric, for the detail pane."""
    t = Text()
    t.append(s.title + "\n", style="bold")
    t.append(f"{s.id}\n", style="dim")
    t.append(f"{s.dimension.value} · {s.family.value} · {s.specialty} · {s.language}")
    t.append(" · RED FLAG\n" if s.red_flag else "\n", style="bold red" if s.red_flag else "")
    p = s.provenance
    validated = "physician-validated" if p.physician_validated else "not physician-validated"
    t.append(f"rubric: {p.rubric_origin} by {p.source}, {validated}\n", style="italic")
    d = s.case.demographics
    who = ", ".join(str(x) for x in (d.age, d.sex, d.details) if x)
    t.append("\nCase\n", style="bold underline")
    if who:
        t.append(who + "\n")
    if s.case.history:
        t.append(s.case.history + "\n")
    if s.case.diagnosis:
        t.append(f"Diagnosis: {s.case.diagnosis}\n")
    t.append("\nOpening\n", style="bold underline")
    for turn in s.opening:
        t.append(f"{turn.role}: ", style="bold")
        t.append(turn.content + "\n")
    t.append("\nHidden facts\n", style="bold underline")
    for f in s.case.facts:
        t.append("! " if f.red_flag else "- ", style="bold red" if f.red_flag else "")
        t.append(f"{f.text}", style="")
        t.append(f"  ({f.id}{', volunteers' if f.volunteer else ''})\n", style="dim")
    t.append("\nRubric\n", style="bold underline")
    for c in s.rubric:
        style = "red" if c.points < 0 else ""
        t.append(f"{c.points:+d} ", style=f"bold {style}")
        t.append(f"[{c.axis}{', critical' if c.critical else ''}] ", style="dim")
        t.append(c.criterion + "\n", style=style)
    return t


class SetupScreen(ModalScreen[EpisodeSetup | None]):
    """Persona, the model spec of each role, and whether to watch or take part."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "start", "Start", priority=True),
    ]

    def __init__(self, services: Services, scenario: Scenario) -> None:
        super().__init__()
        self.services = services
        self.scenario = scenario

    def compose(self) -> ComposeResult:
        specs = self.services.specs
        personas = [(p.id, p.id) for p in self.services.personas]
        with Vertical(id="setup"):
            yield Label(f"[b]Run[/b] {self.scenario.id}", id="setup-title")
            yield Label("Persona")
            yield Select(personas, value=personas[0][1], allow_blank=False, id="persona",
                         compact=True)  # fmt: skip
            yield Label("Clinician model (under test)")
            yield Input(specs["clinician"], id="clinician", compact=True)
            yield Label("Patient model")
            yield Input(specs["patient"], id="patient", compact=True)
            yield Label("Judge model (empty: no judge)")
            yield Input(specs["judge"], id="judge", compact=True)
            with Horizontal(classes="setup-row"):
                yield Label("Seed ")
                yield Input("0", id="seed", type="integer", compact=True)
                yield Label(" Max turns ")
                yield Input(str(self.scenario.max_turns), id="max-turns", type="integer",
                            compact=True)  # fmt: skip
            yield Label("You")
            yield Select(
                [("watch", "watch"), ("play the patient", "patient"),
                 ("play the clinician", "clinician")],
                value="watch", allow_blank=False, id="play", compact=True,
            )  # fmt: skip
            yield Button("Start (ctrl+s)", id="start", variant="primary", compact=True)
        yield Footer()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        value = {i: self.query_one(f"#{i}", Input).value.strip() for i in
                 ("clinician", "patient", "judge", "seed", "max-turns")}  # fmt: skip
        play = self.query_one("#play", Select).value
        if not value["clinician"] or not value["patient"]:
            self.notify("the clinician and patient need a model spec", severity="error")
            return
        self.dismiss(
            EpisodeSetup(
                scenario=self.scenario,
                persona_id=str(self.query_one("#persona", Select).value),
                clinician="human" if play == "clinician" else value["clinician"],
                patient="human" if play == "patient" else value["patient"],
                judge=value["judge"],
                seed=int(value["seed"] or 0),
                max_turns=int(value["max-turns"]) if value["max-turns"] else None,
            )
        )


class BrowserScreen(Screen[None]):
    """Scenarios in a searchable table, with the selected one's case, facts and rubric."""

    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("enter", "setup", "Run", show=True),
        Binding("r", "runs", "Runs"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.shown: list[Scenario] = []

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="/ search: words, or dim:SmartCare fam:triage lang:zh spec:cardio",
            id="search",
            compact=True,
        )
        with Horizontal():
            table: DataTable[str] = DataTable(cursor_type="row", id="scenarios", zebra_stripes=True)
            yield table
            with VerticalScroll(id="detail-pane"):
                yield Static(id="detail")
        yield Label("", id="count")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#scenarios", DataTable)
        table.add_columns("lang", "family", "scenario")
        self.fill("")
        table.focus()

    def fill(self, query: str) -> None:
        table = self.query_one("#scenarios", DataTable)
        table.clear()
        self.shown = [s for s in self.services.scenarios if matches(s, query)]
        for s in self.shown:
            table.add_row(s.language, s.family.value, s.id, key=s.id)
        total = len(self.services.scenarios)
        self.query_one("#count", Label).update(f"{len(self.shown)} of {total} scenarios")
        if self.shown:
            self.show_detail(self.shown[0])
        else:
            self.query_one("#detail", Static).update("no scenario matches")

    def show_detail(self, scenario: Scenario) -> None:
        self.query_one("#detail", Static).update(scenario_details(scenario))
        self.query_one("#detail-pane", VerticalScroll).scroll_home(animate=False)

    @on(Input.Changed, "#search")
    def _search(self, event: Input.Changed) -> None:
        self.fill(event.value)

    @on(Input.Submitted, "#search")
    def _search_done(self) -> None:
        self.query_one("#scenarios", DataTable).focus()

    @on(DataTable.RowHighlighted, "#scenarios")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.show_detail(self.services.scenarios.get(event.row_key.value))

    @on(DataTable.RowSelected, "#scenarios")
    def _selected(self) -> None:
        self.action_setup()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def current(self) -> Scenario | None:
        table = self.query_one("#scenarios", DataTable)
        if not self.shown or table.cursor_row < 0:
            return None
        return self.shown[min(table.cursor_row, len(self.shown) - 1)]

    def action_setup(self) -> None:
        scenario = self.current()
        if scenario is None:
            self.notify("no scenario selected", severity="warning")
            return

        def started(setup: EpisodeSetup | None) -> None:
            if setup is not None:
                app_of(self).open_episode(setup)

        self.app.push_screen(SetupScreen(self.services, scenario), started)

    def action_runs(self) -> None:
        app_of(self).open_runs()
