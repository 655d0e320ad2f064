"""What an episode is made of, apart from the graph that drives it: the state the graph keeps
(plain JSON-able values, so that any checkpointer can store them), the context it runs with
(the scenario, the persona, the two participants, the judge, the limits, an observer), and
the state an episode starts from, the same for a new episode and for a fork."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from personas import Persona
from scenarios import Scenario
from simulator.checks import TurnChecks, disclosed_facts
from simulator.config import EpisodeLimits
from simulator.judging import Judge
from simulator.participants import Participant
from simulator.patient import clinician_system_prompt, patient_system_prompt
from simulator.schemas import EpisodeResult, Role, Turn

NodeName = Literal["patient", "clinician", "judge", "__end__"]


class EpisodeState(TypedDict, total=False):
    """Graph state; plain JSON-able values so that any checkpointer can store it."""

    turns: list[dict[str, Any]]
    disclosed: list[str]
    errors: list[dict[str, Any]]
    termination: str | None
    next_role: Role
    judge: bool  # whether a judge node runs once the conversation has ended
    judged: dict[str, Any] | None


class EpisodeObserver:
    """What a front end sees of an episode: the CLI prints turns, the TUI posts messages, a
    test stops after a turn. Override what you need; every method does nothing by default.
    ``before_turn`` is awaited before each turn, so a UI can pause or step there."""

    async def before_turn(self, role: Role) -> None:
        return None

    def on_turn(self, turn: Turn) -> None:
        return None

    def on_judging(self) -> None:
        return None

    def on_end(self, result: EpisodeResult) -> None:
        return None


@dataclass
class EpisodeContext:
    """Everything an episode runs with that is not state: the run's dependencies."""

    scenario: Scenario
    persona: Persona
    clinician: Participant
    patient: Participant
    judge: Judge | None = None
    seed: int = 0
    limits: EpisodeLimits = field(default_factory=EpisodeLimits)
    observer: EpisodeObserver = field(default_factory=EpisodeObserver)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    deadline: float | None = None

    def __post_init__(self) -> None:
        if self.limits.timeout_s is not None and self.deadline is None:
            self.deadline = time.monotonic() + self.limits.timeout_s
        self.systems: dict[Role, str] = {
            "clinician": clinician_system_prompt(self.scenario),
            "patient": patient_system_prompt(self.scenario, self.persona),
        }
        self.checks = TurnChecks(self.scenario, self.limits.min_turns)

    def participant(self, role: Role) -> Participant:
        return self.patient if role == "patient" else self.clinician

    @property
    def turn_limit(self) -> int:
        return self.limits.max_turns or self.scenario.max_turns


def initial_state(ctx: EpisodeContext, kept_turns: Sequence[dict[str, Any]] = ()) -> EpisodeState:
    """The state an episode starts from. A new episode: the scenario's opening turns, the
    clinician to speak. A fork: the turns it keeps (with what they disclosed), and whoever did
    not speak last to speak next."""
    if kept_turns:
        turns = list(kept_turns)
        disclosed: list[str] = []
        for kept in turns:
            disclosed += [f for f in kept.get("disclosed", []) if f not in disclosed]
        next_role: Role = "clinician" if turns[-1]["role"] == "patient" else "patient"
    else:
        facts = ctx.scenario.case.facts
        turns, disclosed, next_role = [], [], "clinician"
        for i, t in enumerate(ctx.scenario.opening, 1):
            new = []
            if t.role == "patient":
                new = [f for f in disclosed_facts(t.content, facts) if f not in disclosed]
                disclosed += new
            turns.append(
                Turn(
                    index=i, role=t.role, content=t.content, source="opening", disclosed=new
                ).model_dump()
            )
    return {
        "turns": turns,
        "disclosed": disclosed,
        "errors": [],
        "termination": None,
        "next_role": next_role,
        "judge": ctx.judge is not None,
        "judged": None,
    }
