"""What the set-up dialog asks for and ``ClinsimApp.open_episode`` starts; kept apart from
the episode screen so that the browser need not load the episode engine to offer it."""

from __future__ import annotations

from dataclasses import dataclass

from scenarios import Scenario


@dataclass
class EpisodeSetup:
    """What the set-up dialog returns; a role a person plays has the spec 'human'."""

    scenario: Scenario
    persona_id: str
    clinician: str
    patient: str
    judge: str
    seed: int
    max_turns: int | None
