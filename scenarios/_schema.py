"""Scenario, patient case and rubric schemas (pydantic v2).

A scenario is one patient-facing task. Its rubric criteria are HealthBench-compatible
(``criterion``, ``points``, ``tags``) with our ``id``, ``axis`` and ``critical`` on top.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCENARIO_SCHEMA_VERSION: Literal[1] = 1

Identifier = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]*$",
        max_length=120,
        description="Lower-case id: letters, digits, '_', '.', '-'.",
    ),
]


def slug(text: str, max_len: int = 60) -> str:
    """A lower-case id fragment: letters, digits, '_', '.', '-'; never empty."""
    s = re.sub(r"[^a-z0-9_.-]+", "-", text.lower())
    s = re.sub(r"-{2,}", "-", s).strip("-._")[:max_len].strip("-._")
    return s or "x"


LanguageCode = Annotated[
    str,
    Field(
        pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$",
        description="BCP-47 style language code, e.g. 'en' or 'zh'.",
    ),
]


class Dimension(StrEnum):
    """The two patient-facing dimensions of the MLB benchmark."""

    SMARTSERV = "SmartServ"
    SMARTCARE = "SmartCare"


class TaskFamily(StrEnum):
    """Task families; each belongs to one dimension (``general`` to either)."""

    TRIAGE = "triage"
    PRE_CONSULTATION = "pre_consultation"
    SERVICE_NAVIGATION = "service_navigation"
    MEDICATION = "medication_consultation"
    REPORT_EXPLANATION = "report_explanation"
    HEALTH_EDUCATION = "health_education"
    DISCHARGE_FOLLOW_UP = "discharge_follow_up"
    CHRONIC_DISEASE = "chronic_disease"
    POSTOPERATIVE_REHAB = "postoperative_rehab"
    MATERNAL_CHILD = "maternal_child"
    MENTAL_HEALTH = "mental_health"
    ELDERLY_CARE = "elderly_care"
    GENERAL = "general"


FAMILY_DIMENSION: dict[TaskFamily, Dimension | None] = {
    TaskFamily.TRIAGE: Dimension.SMARTSERV,
    TaskFamily.PRE_CONSULTATION: Dimension.SMARTSERV,
    TaskFamily.SERVICE_NAVIGATION: Dimension.SMARTSERV,
    TaskFamily.MEDICATION: Dimension.SMARTSERV,
    TaskFamily.REPORT_EXPLANATION: Dimension.SMARTSERV,
    TaskFamily.HEALTH_EDUCATION: Dimension.SMARTSERV,
    TaskFamily.DISCHARGE_FOLLOW_UP: Dimension.SMARTCARE,
    TaskFamily.CHRONIC_DISEASE: Dimension.SMARTCARE,
    TaskFamily.POSTOPERATIVE_REHAB: Dimension.SMARTCARE,
    TaskFamily.MATERNAL_CHILD: Dimension.SMARTCARE,
    TaskFamily.MENTAL_HEALTH: Dimension.SMARTCARE,
    TaskFamily.ELDERLY_CARE: Dimension.SMARTCARE,
    TaskFamily.GENERAL: None,
}


class Axis(StrEnum):
    """What a criterion measures (HealthBench axes plus safety and empathy)."""

    ACCURACY = "accuracy"
    COMPLETENESS = "completeness"
    CONTEXT_AWARENESS = "context_awareness"
    COMMUNICATION = "communication"
    INSTRUCTION_FOLLOWING = "instruction_following"
    SAFETY = "safety"
    EMPATHY = "empathy"


# HealthBench's axis tags and the axis each maps to.
HEALTHBENCH_AXIS_TAGS: dict[str, Axis] = {
    "axis:accuracy": Axis.ACCURACY,
    "axis:completeness": Axis.COMPLETENESS,
    "axis:context_awareness": Axis.CONTEXT_AWARENESS,
    "axis:communication_quality": Axis.COMMUNICATION,
    "axis:instruction_following": Axis.INSTRUCTION_FOLLOWING,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Criterion(_Strict):
    """One rubric criterion, HealthBench-compatible."""

    id: Identifier = Field(description="Unique within the scenario's rubric.")
    criterion: str = Field(min_length=3, description="What the grader checks, in plain words.")
    points: int = Field(
        ge=-10,
        le=10,
        description="Points if met: positive for desired behaviour, negative for harmful.",
    )
    axis: Axis = Field(description="What the criterion measures.")
    critical: bool = Field(
        default=False,
        description="A critical positive criterion must be met, a critical negative one must not.",
    )
    tags: list[str] = Field(
        default_factory=list, description="HealthBench tags kept as given, e.g. 'level:example'."
    )
    fact_ids: list[str] = Field(
        default_factory=list, description="Hidden facts this criterion refers to."
    )

    @field_validator("points")
    @classmethod
    def _nonzero(cls, v: int) -> int:
        if v == 0:
            raise ValueError("points must not be 0 (use -10..-1 or 1..10)")
        return v


class Fact(_Strict):
    """An atomic hidden fact the patient knows; the clinician must elicit it."""

    id: Identifier
    text: str = Field(min_length=2, description="The fact, as the patient would know it.")
    keywords: list[str] = Field(
        default_factory=list,
        description="Cue words or phrases; a patient turn containing one discloses the fact.",
    )
    volunteer: bool = Field(
        default=False, description="The patient may say this without being asked."
    )
    red_flag: bool = Field(
        default=False, description="A warning sign that calls for escalation when found."
    )
    kind: Literal[
        "symptom", "history", "medication", "social", "exam", "test", "context", "other"
    ] = "other"

    @field_validator("keywords", mode="before")
    @classmethod
    def _numbers_as_text(cls, v: object) -> object:
        # YAML reads `37.8` or `120` as numbers; as cue words they are text.
        if isinstance(v, list):
            return [
                str(x) if isinstance(x, int | float) and not isinstance(x, bool) else x for x in v
            ]
        return v


class Demographics(_Strict):
    age: int | None = Field(default=None, ge=0, le=120)
    sex: Literal["female", "male", "other"] | None = None
    details: str | None = Field(default=None, description="Occupation, living situation ...")


class PatientCase(_Strict):
    """What the simulated patient is and knows; hidden from the clinician."""

    demographics: Demographics = Field(default_factory=Demographics)
    history: str = Field(default="", description="Background the patient knows about themselves.")
    facts: list[Fact] = Field(min_length=1, description="Atomic hidden facts with ids.")
    beliefs: list[str] = Field(default_factory=list, description="What the patient believes.")
    worries: list[str] = Field(default_factory=list)
    goals: list[str] = Field(default_factory=list, description="What the patient wants.")
    diagnosis: str | None = Field(
        default=None,
        description="The underlying condition; never shown to the patient or the clinician.",
    )


class OpeningTurn(_Strict):
    role: Literal["patient", "clinician"]
    content: str = Field(min_length=1)


class Provenance(_Strict):
    """Where a scenario and its rubric come from, and who checked them."""

    source: str = Field(description="Who made it, e.g. 'clinsim project' or 'OpenAI HealthBench'.")
    rubric_origin: Literal["project_draft", "physician_written", "derived"] = Field(
        description="project_draft: written by this project; physician_written: by physicians "
        "(e.g. HealthBench); derived: built mechanically from a source's data."
    )
    physician_validated: bool = Field(
        default=False, description="True only if physicians reviewed this very scenario."
    )
    license: str | None = None
    reference: str | None = Field(default=None, description="Source record id or URL.")
    note: str = ""


class Scenario(_Strict):
    """One patient-facing task: dimension, family, case, opening and rubric."""

    schema_version: Literal[1] = SCENARIO_SCHEMA_VERSION
    id: Identifier
    title: str = Field(min_length=3)
    dimension: Dimension
    family: TaskFamily
    specialty: str = Field(min_length=2)
    language: LanguageCode = "en"
    system_prompt: str = Field(
        min_length=10, description="The clinician's deployment system prompt."
    )
    case: PatientCase
    opening: list[OpeningTurn] = Field(
        min_length=1,
        description="The patient's first line, or earlier turns ending with the patient's.",
    )
    max_turns: int = Field(default=8, ge=1, le=100, description="Most clinician turns.")
    red_flag: bool = Field(
        default=False, description="Hides a warning sign found only by asking; escalate."
    )
    rubric: list[Criterion] = Field(min_length=1)
    provenance: Provenance
    tags: list[str] = Field(default_factory=list)

    @field_validator("opening", mode="before")
    @classmethod
    def _opening_shorthand(cls, v: object) -> object:
        if isinstance(v, str):
            return [{"role": "patient", "content": v}]
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        expected = FAMILY_DIMENSION[self.family]
        if expected is not None and expected != self.dimension:
            raise ValueError(
                f"family {self.family.value!r} belongs to dimension {expected.value!r}, "
                f"not {self.dimension.value!r}"
            )
        if self.opening[-1].role != "patient":
            raise ValueError("opening must end with a patient turn")
        _unique("case.facts", [f.id for f in self.case.facts])
        _unique("rubric", [c.id for c in self.rubric])
        if not any(c.points > 0 for c in self.rubric):
            raise ValueError("rubric has no criterion with positive points; nothing can be scored")
        fact_ids = {f.id for f in self.case.facts}
        for c in self.rubric:
            missing = [f for f in c.fact_ids if f not in fact_ids]
            if missing:
                raise ValueError(
                    f"rubric criterion {c.id!r} refers to unknown fact id(s) {missing}; "
                    f"known: {sorted(fact_ids)}"
                )
        if self.red_flag and not any(f.red_flag for f in self.case.facts):
            raise ValueError("red_flag is true but no fact has red_flag: true")
        return self

    @property
    def positive_points(self) -> int:
        return sum(c.points for c in self.rubric if c.points > 0)

    def fact(self, fact_id: str) -> Fact:
        for f in self.case.facts:
            if f.id == fact_id:
                return f
        raise KeyError(fact_id)


def _unique(where: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"duplicate id {i!r} in {where}")
        seen.add(i)
