"""Records of an episode: turns, transcript, verdicts and the result saved to disk.

Versioned with ``schema_version``; every field says what it holds. These are shared schemas:
judges and the TUI read them, the run store keeps them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from personas import Persona

RESULT_SCHEMA_VERSION: Literal[1] = 1
Role = Literal["patient", "clinician"]
JudgeRole = Literal["patient", "clinician", "judge"]


class Termination(StrEnum):
    """Why an episode stopped."""

    PATIENT_ENDED = "patient_ended"
    CLINICIAN_ENDED = "clinician_ended"
    MAX_TURNS = "max_turns"
    TIMEOUT = "timeout"
    ERROR_BUDGET = "error_budget"
    STOPPED_BY_USER = "stopped_by_user"


class CallRecord(BaseModel):
    """What one model call cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: str = "stop"


class Turn(BaseModel):
    """One utterance; ``index`` is the 1-based number the grader cites as evidence."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=1)
    role: Role
    content: str
    source: Literal["opening", "model", "human"] = Field(
        default="model", description="opening: from the scenario; model; or a person."
    )
    disclosed: list[str] = Field(
        default_factory=list, description="Fact ids this patient turn disclosed for the first time."
    )
    call: CallRecord | None = Field(default=None, description="Cost of the call, for model turns.")
    flags: list[str] = Field(
        default_factory=list,
        description="Checks that fired: 'ungrounded_numbers', 'early_end_ignored', "
        "'addresses_grader', 'truncated'.",
    )


class RoleUsage(BaseModel):
    """Tokens, calls and time spent by one role."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0

    def add(self, call: CallRecord) -> None:
        self.calls += 1
        self.prompt_tokens += call.prompt_tokens
        self.completion_tokens += call.completion_tokens
        self.latency_s += call.latency_s


class ErrorRecord(BaseModel):
    """A failed call: which role, what kind of fault, at which point."""

    role: JudgeRole
    kind: str
    message: str
    after_turn: int = Field(description="Number of turns when it happened.")


class ModelInfo(BaseModel):
    """A role's model as saved with results (never a secret)."""

    spec: str
    temperature: float | None = None
    max_tokens: int | None = None
    base_url: str | None = None
    timeout: float | None = None


class Transcript(BaseModel):
    """The conversation and how it came to be."""

    schema_version: Literal[1] = RESULT_SCHEMA_VERSION
    episode_id: str
    scenario_id: str
    scenario_hash: str = Field(description="sha256 of the scenario as loaded.")
    persona: Persona = Field(description="The persona, in full (sampled ones included).")
    turns: list[Turn]
    termination: Termination
    models: dict[Role, ModelInfo]
    seeds: dict[Role, int | None]
    usage: dict[Role, RoleUsage]
    errors: list[ErrorRecord] = Field(default_factory=list)
    disclosed: list[str] = Field(default_factory=list, description="All fact ids disclosed.")
    judge_directed_turns: list[int] = Field(
        default_factory=list,
        description="Clinician turns that address the grader ('ignore the rubric', 'full marks').",
    )
    forked_from: str | None = Field(
        default=None, description="'EPISODE_ID@N' when this continues another episode's N turns."
    )
    started_at: str
    duration_s: float


class Verdict(BaseModel):
    """The judge's decision on one criterion."""

    criterion_id: str
    status: Literal["met", "not_met", "unscored"]
    points: int = Field(description="The criterion's points, copied for self-contained results.")
    explanation: str = ""
    evidence_turns: list[int] = Field(
        default_factory=list, description="Turn indices that earned the verdict."
    )
    raw: str | None = Field(
        default=None, description="The grader's unparseable reply(ies), kept when unscored."
    )
    votes: dict[str, Literal["met", "not_met", "unscored"]] | None = Field(
        default=None, description="Ensembles: each member judge's verdict, by member label."
    )


class JudgeInfo(BaseModel):
    """Who judged, how, and at what cost."""

    model: ModelInfo
    mode: Literal["per-criterion", "batched"]
    seed: int | None = None
    usage: RoleUsage = Field(default_factory=RoleUsage)
    members: list[JudgeInfo] = Field(
        default_factory=list, description="Ensembles: the member judges (model spec 'ensemble')."
    )


class JudgeOutput(BaseModel):
    """What a Judge returns for one transcript."""

    verdicts: list[Verdict]
    score: float | None = Field(
        description="Sum of points of met criteria / sum of positive points, over scored criteria."
    )
    critical_pass: bool | None = None
    unscored: int = 0
    judge: JudgeInfo
    agreement: float | None = Field(
        default=None,
        description="Ensembles: mean share of scored votes that agree with the majority.",
    )
    disputed: list[str] = Field(
        default_factory=list, description="Ensembles: criteria on which the member judges split."
    )


class EpisodeResult(BaseModel):
    """One episode: its transcript and, once judged, its verdicts and score."""

    schema_version: Literal[1] = RESULT_SCHEMA_VERSION
    clinsim_version: str
    transcript: Transcript
    verdicts: list[Verdict] = Field(default_factory=list)
    score: float | None = None
    critical_pass: bool | None = None
    unscored: int = 0
    judge: JudgeInfo | None = None
    agreement: float | None = None
    disputed: list[str] = Field(default_factory=list)

    def with_judgement(self, out: JudgeOutput) -> EpisodeResult:
        return self.model_copy(
            update={
                "verdicts": out.verdicts,
                "score": out.score,
                "critical_pass": out.critical_pass,
                "unscored": out.unscored,
                "judge": out.judge,
                "agreement": out.agreement,
                "disputed": out.disputed,
            }
        )
