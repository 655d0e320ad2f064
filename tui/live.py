"""A live episode and what the screens that show one share. ``LiveEpisode`` drives the episode
with a gate that pauses between turns and posts what happens (``tui.messages``) to its
screen; ``EpisodeView`` is the base of those screens (the episode screen and the fork
comparison): the status state, pause / step / stop, and saving the result."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual import on
from textual.message_pump import MessagePump
from textual.screen import Screen

from personas import Persona
from scenarios import Scenario
from simulator.config import EpisodeLimits
from simulator.episode import EpisodeRunner, PendingInput
from simulator.schemas import EpisodeResult, Role, Turn
from simulator.session import EpisodeObserver
from tui.messages import EpisodeFinished, InputRequested, JudgingStarted, NextTurn, TurnAdded
from tui.roles import Roles, save_result
from tui.services import Services


class LiveEpisode(EpisodeObserver):
    """One episode driven by ``EpisodeRunner``, with a gate that pauses between turns; it
    observes its own episode (``EpisodeObserver``) and posts to ``target`` (the screen
    showing it) ``NextTurn`` at the gate, ``TurnAdded`` for each turn, ``InputRequested``
    when a person is to speak, ``JudgingStarted`` and, once the backends are closed,
    ``EpisodeFinished``."""

    def __init__(
        self,
        target: MessagePump,
        roles: Roles,
        scenario: Scenario,
        persona: Persona,
        *,
        seed: int,
        max_turns: int | None = None,
    ) -> None:
        self.target = target
        self.roles = roles
        self.ctx = roles.context(
            scenario, persona, seed=seed, limits=EpisodeLimits(max_turns=max_turns), observer=self
        )
        self.runner = EpisodeRunner()
        self.go = asyncio.Event()
        self.go.set()
        self.stepping = False
        self.pending: PendingInput | None = None
        self.result: EpisodeResult | None = None

    async def check(self) -> None:
        """Fail fast (``BackendError``) when a backend cannot work at all."""
        await self.roles.check()

    async def start(self) -> None:
        """Run the episode until it ends or waits for a person."""
        await self._settle(await self.runner.start(self.ctx))

    async def answer(self, text: str | None) -> None:
        """The person's turn (None stops the episode); run on from there."""
        assert self.pending is not None
        episode_id = self.pending.episode_id
        outcome = await self.runner.answer(self.ctx, episode_id, text)
        await self._settle(outcome)

    async def fork(self, source: EpisodeResult, at_turn: int) -> None:
        """Keep ``source``'s first ``at_turn`` turns and continue with these roles."""
        outcome = await self.runner.fork(self.ctx, source, at_turn)
        await self._settle(outcome)

    async def before_turn(self, role: Role) -> None:
        """The gate: wait while paused; after a step, pause again before the next turn."""
        self.target.post_message(NextTurn(role, held=not self.go.is_set()))
        await self.go.wait()
        if self.stepping:
            self.stepping = False
            self.go.clear()

    def on_turn(self, turn: Turn) -> None:
        self.target.post_message(TurnAdded(turn))

    def on_judging(self) -> None:
        self.target.post_message(JudgingStarted())

    async def _settle(self, outcome: EpisodeResult | PendingInput) -> None:
        if isinstance(outcome, PendingInput):
            self.pending = outcome
            self.target.post_message(InputRequested(outcome.role))
            return
        self.pending = None
        self.result = outcome
        await self.roles.aclose()
        self.target.post_message(EpisodeFinished(outcome))


class EpisodeView(Screen[None]):
    """What the live episode and the fork comparison share: status state and the gate keys.
    Each screen handles ``TurnAdded``, ``InputRequested`` and ``EpisodeFinished`` its own
    way; ``NextTurn`` and ``JudgingStarted`` only change the status line."""

    services: Services  # set by each screen's __init__
    state = "starting"
    next_role: str | None = None
    live: LiveEpisode | None = None

    def refresh_status(self) -> None:
        """Show the state in the status line; each screen draws its own."""
        raise NotImplementedError

    @on(NextTurn)
    def _next_turn(self, message: NextTurn) -> None:
        self.next_role = message.role
        self.refresh_status()

    @on(JudgingStarted)
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
            self.run_worker(live.answer(None), exclusive=True, group="episode")

    async def on_unmount(self) -> None:
        live = self.live
        if live is not None and live.result is None:
            live.ctx.stop.set()
            live.go.set()
            await live.roles.aclose()
