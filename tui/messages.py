"""What a live episode tells the screen that shows it. ``LiveEpisode`` (``tui.live``) posts
these to its screen from the worker that drives the episode; the screen handles them with
``@on(...)``, so the episode never calls into a screen. Tests wait on them (Textual's
``message_hook``) instead of polling the status line.

They do not bubble: the screen that runs the episode is the one that shows it."""

from __future__ import annotations

from textual.message import Message

from simulator.schemas import EpisodeResult, Role, Turn


class EpisodeMessage(Message, bubble=False):
    """Base of the messages a live episode posts (each subclass says ``bubble=False`` again:
    Textual resets it to True for a subclass that does not)."""


class NextTurn(EpisodeMessage, bubble=False):
    """``role`` speaks next; ``held`` when the episode waits for resume or step first."""

    def __init__(self, role: Role, *, held: bool) -> None:
        super().__init__()
        self.role: Role = role
        self.held = held


class TurnAdded(EpisodeMessage, bubble=False):
    """A turn of the conversation: a model's or a person's, an opening turn, or one a fork
    keeps from its source."""

    def __init__(self, turn: Turn) -> None:
        super().__init__()
        self.turn = turn


class InputRequested(EpisodeMessage, bubble=False):
    """The episode waits for the person playing ``role``."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role


class JudgingStarted(EpisodeMessage, bubble=False):
    """The conversation has ended and the judge has started (it can take a while)."""


class EpisodeFinished(EpisodeMessage, bubble=False):
    """The episode is over (judged, when it has a judge) and its backends are closed."""

    def __init__(self, result: EpisodeResult) -> None:
        super().__init__()
        self.result = result
