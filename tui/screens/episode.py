"""A live episode: the conversation streams turn by turn, the facts panel ticks off what the
patient has disclosed; pause, step and stop; a person can play either role; a finished
episode can be forked from any turn with another clinician model (``ClinsimApp.open_fork``)."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer, Input, Static

from personas import Persona
from simulator.llm import BackendError
from simulator.schemas import Turn
from tui.episode_setup import EpisodeSetup
from tui.live import EpisodeView, LiveEpisode
from tui.messages import EpisodeFinished, InputRequested, TurnAdded
from tui.nav import app_of
from tui.roles import SetupError, build_roles
from tui.services import Services
from tui.widgets.facts import FactsPanel
from tui.widgets.transcript import TranscriptView
from tui.widgets.verdicts import verdict_lines


class EpisodeScreen(EpisodeView):
    """Watch an episode, or take part in it as the patient or the clinician."""

    BINDINGS = [
        Binding("space", "pause", "Pause/resume"),
        Binding("n", "step", "Step"),
        Binding("s", "stop", "Stop"),
        Binding("f", "fork", "Fork"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, services: Services, setup: EpisodeSetup) -> None:
        super().__init__()
        self.services = services
        self.setup = setup
        self.scenario = setup.scenario
        self.persona: Persona | None = None
        self.turns: list[Turn] = []
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Horizontal():
            yield TranscriptView(id="transcript")
            yield FactsPanel(self.scenario, id="facts")
        yield Input(id="reply", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#reply", Input).display = False
        self.refresh_status()
        self.run_worker(self._start(), exclusive=True, group="episode")

    # ------------------------------------------------------------------ running

    async def _start(self) -> None:
        s = self.setup
        try:
            try:
                persona = self.persona = self.services.personas.get(s.persona_id)
            except KeyError as e:
                raise SetupError(str(e.args[0])) from None
            roles = build_roles(self.services, s.clinician, s.patient, s.judge)
            live = self.live = LiveEpisode(
                self, roles, self.scenario, persona, seed=s.seed, max_turns=s.max_turns
            )
            self.state = "loading models"
            self.refresh_status()
            await live.check()
        except (SetupError, BackendError) as e:
            self._failed(str(e))
            return
        self.state = "running"
        self.refresh_status()
        await live.start()

    def _failed(self, message: str) -> None:
        self.error = message
        self.state = "cannot start"
        self.refresh_status()
        self.notify(message, severity="error", timeout=10)

    @on(TurnAdded)
    def _turn_added(self, message: TurnAdded) -> None:
        turn = message.turn
        self.turns.append(turn)
        self.query_one("#transcript", TranscriptView).add_turn(turn)
        self.query_one("#facts", FactsPanel).disclose(turn.disclosed)
        self.refresh_status()

    @on(InputRequested)
    def _ask(self, message: InputRequested) -> None:
        role = message.role
        self.state = f"your turn ({role})"
        reply = self.query_one("#reply", Input)
        reply.placeholder = f"You are the {role}: type and press Enter; empty Enter stops"
        reply.display = True
        reply.value = ""
        reply.focus()
        self.refresh_status()

    @on(Input.Submitted, "#reply")
    def _reply(self, event: Input.Submitted) -> None:
        live = self.live
        if live is None or live.pending is None:
            return
        event.input.display = False
        self.state = "running" if event.value.strip() else "stopping"
        self.refresh_status()
        self.run_worker(live.answer(event.value.strip() or None), exclusive=True, group="episode")

    @on(EpisodeFinished)
    def _finished(self, message: EpisodeFinished) -> None:
        result = message.result
        self.state = f"ended: {result.transcript.termination.value}"
        criteria = {c.id: c.criterion for c in self.scenario.rubric}
        view = self.query_one("#transcript", TranscriptView)
        view.mount(Static(verdict_lines(result, criteria), classes="outcome"))
        view.call_after_refresh(view.scroll_end, animate=False)
        self.save(result)
        self.refresh_status()

    # ------------------------------------------------------------------ display

    def refresh_status(self) -> None:
        clinician_turns = sum(1 for t in self.turns if t.role == "clinician")
        limit = self.setup.max_turns or self.scenario.max_turns
        who = f" · next: {self.next_role}" if self.next_role and self.state == "paused" else ""
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{self.scenario.id}", style="bold")
        text.append(f" · {self.setup.persona_id} · clinician {self.setup.clinician}\n")
        text.append(f"turn {len(self.turns)} · clinician turns {clinician_turns}/{limit} · ")
        style = "bold red" if self.state == "cannot start" else "bold"
        text.append(f"{self.state}{who}", style=style)
        self.query_one("#status", Static).update(text)

    # ------------------------------------------------------------------ actions

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_fork(self) -> None:
        live = self.live
        if live is None or live.result is None:
            self.notify("fork a finished episode (stop it first with s)", severity="warning")
            return
        app_of(self).open_fork(self.scenario, live.result)
