"""Forking a finished episode: the dialog that asks where to fork and with which clinician
model (``ForkScreen``), and the screen that runs the branch beside the original
(``CompareScreen``). ``open_fork`` chains the two; ``ClinsimApp.open_fork`` calls it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Static

from scenarios import Scenario
from simulator.llm import BackendError
from simulator.schemas import EpisodeResult
from tui.live import EpisodeView, LiveEpisode
from tui.messages import EpisodeFinished, InputRequested, TurnAdded
from tui.roles import SetupError, build_roles
from tui.services import Services
from tui.widgets.transcript import TranscriptView
from tui.widgets.verdicts import verdict_lines


@dataclass
class ForkRequest:
    at_turn: int
    clinician: str


class ForkScreen(ModalScreen[ForkRequest | None]):
    """Which turn to keep up to, and the clinician model that continues from there."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "fork", "Fork")]

    def __init__(self, turns: int, default_turn: int, clinician: str) -> None:
        super().__init__()
        self.turns = turns
        self.default_turn = default_turn
        self.clinician = clinician

    def compose(self) -> ComposeResult:
        with Vertical(id="fork"):
            yield Label(f"[b]Fork[/b]: keep turns 1..N (1-{self.turns}), then continue with")
            yield Label("Keep up to turn")
            yield Input(str(self.default_turn), id="at-turn", type="integer", compact=True)
            yield Label("Clinician model")
            yield Input(self.clinician, id="fork-clinician", compact=True)
            yield Button("Fork (ctrl+s)", id="do-fork", variant="primary", compact=True)
        yield Footer()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#do-fork")
    @on(Input.Submitted)
    def action_fork(self) -> None:
        raw = self.query_one("#at-turn", Input).value.strip()
        spec = self.query_one("#fork-clinician", Input).value.strip()
        if not raw.isdigit() or not 1 <= int(raw) <= self.turns:
            self.notify(f"keep between 1 and {self.turns} turns", severity="error")
            return
        if not spec:
            self.notify("give the clinician model that continues", severity="error")
            return
        self.dismiss(ForkRequest(int(raw), spec))


def open_fork(app: App[Any], services: Services, scenario: Scenario, source: EpisodeResult) -> None:
    """Ask where to fork ``source`` and with which clinician, then show both branches."""
    turns = source.transcript.turns
    last_patient = max((t.index for t in turns if t.role == "patient"), default=len(turns))
    clinician = source.transcript.models["clinician"].spec
    if clinician == "human":  # a branch runs unattended: offer the default model instead
        clinician = services.specs["clinician"]

    def chosen(req: ForkRequest | None) -> None:
        if req is not None:
            app.push_screen(CompareScreen(services, scenario, source, req))

    app.push_screen(ForkScreen(len(turns), last_patient, clinician), chosen)


class CompareScreen(EpisodeView):
    """The original episode and a branch that continues its first N turns with another
    clinician model, side by side, with both outcomes."""

    BINDINGS = [
        Binding("space", "pause", "Pause/resume"),
        Binding("n", "step", "Step"),
        Binding("s", "stop", "Stop"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(
        self, services: Services, scenario: Scenario, source: EpisodeResult, req: ForkRequest
    ) -> None:
        super().__init__()
        self.services = services
        self.scenario = scenario
        self.source = source
        self.req = req
        self.branch_turns = 0
        self.branch: EpisodeResult | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Horizontal():
            with Vertical(classes="branch"):
                yield Label(f"original · {self.source.transcript.models['clinician'].spec}")
                yield TranscriptView(id="left")
            with Vertical(classes="branch"):
                yield Label(f"branch · {self.req.clinician}")
                yield TranscriptView(id="right")
        yield Footer()

    def on_mount(self) -> None:
        kept = self.req.at_turn
        left = self.query_one("#left", TranscriptView)
        left.set_turns(t for t in self.source.transcript.turns if t.index > kept)
        criteria = {c.id: c.criterion for c in self.scenario.rubric}
        left.mount(Static(verdict_lines(self.source, criteria), classes="outcome"))
        self.refresh_status()
        self.run_worker(self._start(), exclusive=True, group="episode")

    async def _start(self) -> None:
        t = self.source.transcript
        patient = t.models["patient"].spec
        if patient == "human":
            patient = self.services.specs["patient"]
        judge = self.source.judge.model.spec if self.source.judge is not None else ""
        if judge == "ensemble":
            judge = self.services.specs["judge"]
        try:
            roles = build_roles(self.services, self.req.clinician, patient, judge)
            live = self.live = LiveEpisode(
                self, roles, self.scenario, t.persona, seed=t.seeds.get("clinician") or 0
            )
            await live.check()
        except (SetupError, BackendError) as e:
            self.state = "cannot start"
            self.refresh_status()
            self.notify(str(e), severity="error", timeout=10)
            return
        self.state = "running"
        self.refresh_status()
        await live.fork(self.source, self.req.at_turn)

    @on(TurnAdded)
    def _turn_added(self, message: TurnAdded) -> None:
        if message.turn.index > self.req.at_turn:
            self.branch_turns += 1
            self.query_one("#right", TranscriptView).add_turn(message.turn)
        self.refresh_status()

    @on(InputRequested)
    def _ask(self, message: InputRequested) -> None:
        self.notify(
            f"the branch waits for a person as the {message.role}; stopping it", severity="warning"
        )
        self.action_stop()

    @on(EpisodeFinished)
    def _finished(self, message: EpisodeFinished) -> None:
        result = self.branch = message.result
        self.state = f"ended: {result.transcript.termination.value}"
        criteria = {c.id: c.criterion for c in self.scenario.rubric}
        right = self.query_one("#right", TranscriptView)
        right.mount(Static(verdict_lines(result, criteria), classes="outcome"))
        self.save(result)
        self.refresh_status()

    def refresh_status(self) -> None:
        def score(r: EpisodeResult | None) -> str:
            return "—" if r is None or r.score is None else f"{r.score:.2f}"

        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"fork of {self.source.transcript.episode_id}", style="bold")
        text.append(f" · turns 1-{self.req.at_turn} shared · branch +{self.branch_turns} turns\n")
        text.append(f"score original {score(self.source)} · branch {score(self.branch)} · ")
        text.append(self.state, style="bold")
        self.query_one("#status", Static).update(text)

    def action_back(self) -> None:
        self.app.pop_screen()
