"""A live episode: the conversation streams turn by turn, the facts panel ticks off what the
patient has disclosed; pause, step and stop; a person can play either role; a finished
episode can be forked from any turn with another clinician model (``CompareScreen``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Static

from personas import Persona
from scenarios import Scenario
from simulator.config import episode_path, role_config, write_private
from simulator.episode import EpisodeRunner, PendingInput
from simulator.graph import EpisodeContext
from simulator.judging import Judge
from simulator.llm import BackendError, ChatBackend, ModelConfig
from simulator.schemas import EpisodeResult, JudgeOutput, Role, Transcript, Turn
from tui.screens.browser import EpisodeSetup
from tui.services import Services
from tui.widgets.facts import FactsPanel
from tui.widgets.transcript import TranscriptView

STATUS_STYLE = {"met": "green", "not_met": "yellow", "unscored": "red"}


class SetupError(Exception):
    """A spec or library entry the episode cannot start with; one line."""


def model_config(role: str, spec: str) -> ModelConfig:
    try:
        return role_config(role, None, {"spec": spec})
    except (BackendError, ValidationError) as e:
        msg = str(e)
        if isinstance(e, ValidationError):
            msg = e.errors()[0]["msg"].removeprefix("Value error, ")
        raise SetupError(f"{role}: {msg}") from None


def verdict_lines(result: EpisodeResult, criteria: dict[str, str]) -> Text:
    """The outcome under a finished transcript: termination, score and each verdict."""
    t = result.transcript
    text = Text()
    text.append(f"Ended: {t.termination.value}", style="bold")
    text.append(f" · {len(t.turns)} turns · {len(t.disclosed)} facts disclosed\n")
    for e in t.errors:
        text.append(f"error ({e.role}, {e.kind}): {e.message}\n", style="red")
    if not result.verdicts:
        text.append("not judged\n", style="dim")
        return text
    score = "n/a" if result.score is None else f"{result.score:.2f}"
    crit = {True: "pass", False: "FAIL", None: "n/a"}[result.critical_pass]
    text.append(f"score {score} · critical {crit} · unscored {result.unscored}\n", style="bold")
    for v in result.verdicts:
        text.append(f"{v.status:<9}", style=STATUS_STYLE[v.status])
        cites = ",".join(map(str, v.evidence_turns))
        text.append(f" {v.criterion_id} {criteria.get(v.criterion_id, '')[:60]}")
        text.append(f" (turns {cites})\n" if cites else "\n", style="dim")
    return text


class _ObservedJudge:
    """Tells the screen when judging starts (it can take a while)."""

    def __init__(self, inner: Judge, on_start: Any) -> None:
        self.inner = inner
        self.on_start = on_start

    async def judge(self, scenario: Scenario, transcript: Transcript) -> JudgeOutput:
        self.on_start()
        return await self.inner.judge(scenario, transcript)


@dataclass
class Roles:
    """The backends of one episode, built from specs; closed when the episode is left."""

    clinician: tuple[ChatBackend, ModelConfig]
    patient: tuple[ChatBackend, ModelConfig]
    judge: Judge | None
    backends: list[ChatBackend]

    def context(
        self, scenario: Scenario, persona: Persona, on_judging: Any, **settings: Any
    ) -> EpisodeContext:
        """The episode's context with these backends; ``on_judging`` is called when the
        judge starts."""
        return EpisodeContext(
            scenario=scenario,
            persona=persona,
            clinician=self.clinician[0],
            patient=self.patient[0],
            clinician_cfg=self.clinician[1],
            patient_cfg=self.patient[1],
            judge=None if self.judge is None else _ObservedJudge(self.judge, on_judging),
            **settings,
        )

    async def aclose(self) -> None:
        for b in self.backends:
            await b.aclose()


def build_roles(services: Services, clinician: str, patient: str, judge: str) -> Roles:
    cfgs = {"clinician": model_config("clinician", clinician),
            "patient": model_config("patient", patient)}  # fmt: skip
    try:
        built = {role: services.make_backend(cfg) for role, cfg in cfgs.items()}
    except BackendError as e:
        raise SetupError(str(e)) from None
    backends = list(built.values())
    the_judge: Judge | None = None
    if judge:
        if judge == "human":
            raise SetupError("judge: a person reviews verdicts in a run's review screen instead")
        if services.make_judge is None:
            raise SetupError("judge: no judge available here; leave the judge empty")
        try:
            the_judge, judge_backends = services.make_judge(
                model_config("judge", judge), services.judge_mode, 0
            )
        except (BackendError, ValueError) as e:
            raise SetupError(f"judge: {e}") from None
        backends += judge_backends
    return Roles(
        (built["clinician"], cfgs["clinician"]), (built["patient"], cfgs["patient"]),
        the_judge, backends,
    )  # fmt: skip


def save_result(services: Services, result: EpisodeResult) -> Path:
    """Write the result like ``clinsim run`` does (0600), so nothing watched is lost."""
    t = result.transcript
    path = episode_path(t.scenario_id, t.episode_id, services.episodes_dir)
    write_private(path, result.model_dump_json(indent=2))
    return path


class LiveEpisode:
    """One episode driven by ``EpisodeRunner``, with a gate that pauses between turns."""

    def __init__(self, screen: EpisodeView, ctx: EpisodeContext, roles: Roles) -> None:
        self.screen = screen
        self.ctx = ctx
        self.roles = roles
        self.runner = EpisodeRunner()
        self.go = asyncio.Event()
        self.go.set()
        self.stepping = False
        self.pending: PendingInput | None = None
        self.result: EpisodeResult | None = None
        ctx.before_turn = self.gate

    async def gate(self, role: Role) -> None:
        self.screen.next_role = role
        self.screen.refresh_status()
        await self.go.wait()
        if self.stepping:
            self.stepping = False
            self.go.clear()

    async def settle(self, outcome: EpisodeResult | PendingInput) -> None:
        if isinstance(outcome, PendingInput):
            self.pending = outcome
            self.screen.ask(outcome.role)
            return
        self.pending = None
        self.result = outcome
        await self.roles.aclose()
        self.screen.finished(outcome)


class EpisodeView(Screen[None]):
    """What the live episode and the fork comparison share: status line and the gate keys."""

    services: Services  # set by each screen's __init__
    state = "starting"
    next_role: str | None = None
    live: LiveEpisode | None = None

    def refresh_status(self) -> None:  # pragma: no cover - overridden
        pass

    def ask(self, role: str) -> None:  # pragma: no cover - overridden
        pass

    def finished(self, result: EpisodeResult) -> None:  # pragma: no cover - overridden
        pass

    def _judging(self) -> None:
        self.state = "judging"
        self.refresh_status()

    def save(self, result: EpisodeResult) -> Path | None:
        """Save a finished episode like 'clinsim run' does, and say where (or why not)."""
        try:
            path = save_result(self.services, result)
        except OSError as e:
            self.notify(f"could not save the result: {e}", severity="error")
            return None
        self.notify(f"saved {path.name}")
        return path

    def action_pause(self) -> None:
        live = self.live
        if live is None or live.result is not None:
            return
        if live.go.is_set():
            live.go.clear()
            self.state = "paused"
        else:
            live.stepping = False
            live.go.set()
            self.state = "running"
        self.refresh_status()

    def action_step(self) -> None:
        live = self.live
        if live is None or live.result is not None:
            return
        if live.go.is_set():
            self.notify("pause first (space), then step one turn at a time")
            return
        live.stepping = True
        self.state = "paused"
        live.go.set()
        self.refresh_status()

    def action_stop(self) -> None:
        live = self.live
        if live is None or live.result is not None:
            return
        live.ctx.stop.set()
        live.go.set()
        self.state = "stopping"
        self.refresh_status()
        if live.pending is not None:
            self.run_worker(self._answer(None), exclusive=True, group="episode")

    async def _answer(self, text: str | None) -> None:
        live = self.live
        assert live is not None and live.pending is not None
        outcome = await live.runner.answer(
            live.ctx, live.pending.episode_id, text, on_turn=self.on_turn
        )
        await live.settle(outcome)

    def on_turn(self, turn: Turn) -> None:  # pragma: no cover - overridden
        pass

    async def on_unmount(self) -> None:
        live = self.live
        if live is not None and live.result is None:
            live.ctx.stop.set()
            live.go.set()
            await live.roles.aclose()


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
                self.persona = self.services.personas.get(s.persona_id)
            except KeyError as e:
                raise SetupError(str(e.args[0])) from None
            roles = build_roles(self.services, s.clinician, s.patient, s.judge)
            ctx = roles.context(
                self.scenario, self.persona, self._judging, seed=s.seed, max_turns=s.max_turns
            )
            self.live = LiveEpisode(self, ctx, roles)
            self.state = "loading models"
            self.refresh_status()
            for b in roles.backends:
                await b.check()
        except (SetupError, BackendError) as e:
            self._failed(str(e))
            return
        self.state = "running"
        self.refresh_status()
        outcome = await self.live.runner.start(ctx, on_turn=self.on_turn)
        await self.live.settle(outcome)

    def _failed(self, message: str) -> None:
        self.error = message
        self.state = "cannot start"
        self.refresh_status()
        self.notify(message, severity="error", timeout=10)

    def on_turn(self, turn: Turn) -> None:
        self.turns.append(turn)
        self.query_one("#transcript", TranscriptView).add_turn(turn)
        self.query_one("#facts", FactsPanel).disclose(turn.disclosed)
        self.refresh_status()

    def ask(self, role: str) -> None:
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
        self.run_worker(self._answer(event.value.strip() or None), exclusive=True, group="episode")

    def finished(self, result: EpisodeResult) -> None:
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
        open_fork(self, self.services, self.scenario, live.result)


# ---------------------------------------------------------------------- forking


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


def open_fork(
    screen: Screen[Any], services: Services, scenario: Scenario, source: EpisodeResult
) -> None:
    """Ask where to fork ``source`` and with which clinician, then show both branches."""
    turns = source.transcript.turns
    last_patient = max((t.index for t in turns if t.role == "patient"), default=len(turns))
    clinician = source.transcript.models["clinician"].spec
    if clinician == "human":  # a branch runs unattended: offer the default model instead
        clinician = services.specs["clinician"]

    def chosen(req: ForkRequest | None) -> None:
        if req is not None:
            screen.app.push_screen(CompareScreen(services, scenario, source, req))

    screen.app.push_screen(ForkScreen(len(turns), last_patient, clinician), chosen)


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
            ctx = roles.context(
                self.scenario, t.persona, self._judging, seed=t.seeds.get("clinician") or 0
            )
            self.live = LiveEpisode(self, ctx, roles)
            for b in roles.backends:
                await b.check()
        except (SetupError, BackendError) as e:
            self.state = "cannot start"
            self.refresh_status()
            self.notify(str(e), severity="error", timeout=10)
            return
        self.state = "running"
        self.refresh_status()
        outcome = await self.live.runner.fork(
            ctx, self.source, self.req.at_turn, on_turn=self.on_turn
        )
        await self.live.settle(outcome)

    def on_turn(self, turn: Turn) -> None:
        if turn.index > self.req.at_turn:
            self.branch_turns += 1
            self.query_one("#right", TranscriptView).add_turn(turn)
        self.refresh_status()

    def ask(self, role: str) -> None:
        self.notify(f"the branch waits for a person as the {role}; stopping it", severity="warning")
        self.action_stop()

    def finished(self, result: EpisodeResult) -> None:
        self.branch = result
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
