"""A conversation, turn by turn: patient and clinician told apart by label, colour and side."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from simulator.schemas import Turn

ROLE_LABEL = {"patient": "PATIENT", "clinician": "CLINICIAN"}


def turn_text(turn: Turn) -> Text:
    """The turn's header line (number, role, source, flags) and its content."""
    text = Text()
    text.append(f"{turn.index:>2} {ROLE_LABEL[turn.role]}", style="bold")
    if turn.source == "human":
        text.append(" (you)", style="italic")
    elif turn.source == "opening":
        text.append(" (opening)", style="dim")
    for flag in turn.flags:
        text.append(f" [{flag}]", style="bold red" if flag == "addresses_grader" else "yellow")
    if turn.disclosed:
        text.append(f"  +{len(turn.disclosed)} fact{'s' * (len(turn.disclosed) > 1)}", "green")
    text.append("\n")
    text.append(turn.content)
    return text


class TurnView(Static):
    """One turn; CSS classes ``patient``/``clinician`` and ``evidence`` when a verdict cites it."""

    def __init__(self, turn: Turn) -> None:
        super().__init__(turn_text(turn), classes=f"turn {turn.role}")
        self.turn = turn


class TranscriptView(VerticalScroll):
    """The turns of one episode; new turns scroll into view."""

    can_focus = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.views: dict[int, TurnView] = {}

    def add_turn(self, turn: Turn) -> None:
        if turn.index in self.views:
            return  # already shown (a fork replays the shared turns)
        view = self.views[turn.index] = TurnView(turn)
        self.mount(view)
        self.call_after_refresh(self.scroll_end, animate=False)

    def set_turns(self, turns: Iterable[Turn]) -> None:
        self.remove_children()
        self.views = {t.index: TurnView(t) for t in turns}
        self.mount_all(self.views.values())

    def highlight(self, indices: Iterable[int]) -> None:
        """Mark the cited turns and bring the first of them into view."""
        wanted = set(indices)
        first = None
        for view in self.views.values():
            cited = view.turn.index in wanted
            view.set_class(cited, "evidence")
            if cited and first is None:
                first = view
        if first is not None:
            self.scroll_to_widget(first, animate=False, top=True)
