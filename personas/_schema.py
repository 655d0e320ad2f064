"""Persona schema: how the simulated patient behaves, on typed axes."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PERSONA_SCHEMA_VERSION: Literal[1] = 1


class Temperament(StrEnum):
    CALM = "calm"
    ANXIOUS = "anxious"
    IRRITABLE = "irritable"
    DISTRUSTFUL = "distrustful"
    RESERVED = "reserved"
    TALKATIVE = "talkative"


class Level(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Verbosity(StrEnum):
    TERSE = "terse"
    MODERATE = "moderate"
    VERBOSE = "verbose"


class Recall(StrEnum):
    POOR = "poor"
    FAIR = "fair"
    GOOD = "good"


class Confusion(StrEnum):
    NONE = "none"
    MILD = "mild"
    MARKED = "marked"


class Speaker(StrEnum):
    SELF = "self"
    CAREGIVER = "caregiver"


class Persona(BaseModel):
    """A patient persona; rendered into the patient agent's prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = PERSONA_SCHEMA_VERSION
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=80)]
    name: str = Field(min_length=1, description="Display name, e.g. 'Anxious first-timer'.")
    description: str = ""
    temperament: Temperament
    health_literacy: Level
    verbosity: Verbosity
    recall: Recall
    confusion: Confusion = Confusion.NONE
    language: Annotated[str, Field(pattern=r"^(auto|[a-z]{2}(-[A-Za-z]{2,4})?)$")] = Field(
        default="auto",
        description="Preferred language; 'auto' follows the scenario. The scenario's language "
        "always wins in the conversation.",
    )
    speaker: Speaker = Speaker.SELF
    caregiver_relation: str | None = Field(
        default=None, description="Who speaks when speaker is caregiver, e.g. 'daughter'."
    )
    quirks: list[str] = Field(default_factory=list, description="Extra behaviour, one per line.")
    sampled_seed: int | None = Field(
        default=None, description="Set when the persona was sampled from the axes."
    )

    @model_validator(mode="after")
    def _caregiver(self) -> Persona:
        if self.speaker is Speaker.CAREGIVER and not self.caregiver_relation:
            raise ValueError("speaker is 'caregiver' but caregiver_relation is not set")
        if self.speaker is Speaker.SELF and self.caregiver_relation:
            raise ValueError("caregiver_relation is set but speaker is 'self'")
        return self
