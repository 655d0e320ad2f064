"""Records of an episode: turns, transcript, verdicts and the result saved to disk.

Versioned with ``schema_version``; every field says what it holds. These are shared schemas:
judges and the TUI read them, the run store keeps them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from personas import Persona

# 2: verdicts say why they are unscored (``unscored_reason``); version 1 files still load.
RESULT_SCHEMA_VERSION: Literal[2] = 2
Role = Literal["patient", "clinician"]
JudgeRole = Literal["patient", "clinician", "judge"]
FailureRole = Literal["infrastructure", "patient", "clinician", "judge"]
UnscoredReason = Literal["call_failed", "unparseable", "missing", "tie"]


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

    schema_version: Literal[1, 2] = RESULT_SCHEMA_VERSION
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
    unscored_reason: UnscoredReason | None = Field(
        default=None,
        description=(
            "Why an unscored verdict is unscored: the grader call failed (the infrastructure's "
            "fault), its reply never parsed, the criterion was missing from its replies, or "
            "an ensemble's votes tied (or none was usable)."
        ),
    )

    @model_validator(mode="after")
    def _reason_of_old_files(self) -> Verdict:
        """Version 1 results had no ``unscored_reason``: it is read off the explanation,
        whose wording version 1 wrote."""
        if self.status == "unscored" and self.unscored_reason is None:
            why = self.explanation
            if why.startswith("grader call failed"):
                self.unscored_reason = "call_failed"
            elif why.startswith("grader reply unusable"):
                self.unscored_reason = "unparseable"
            elif why.startswith("criterion missing"):
                self.unscored_reason = "missing"
            elif why.startswith(("ensemble tie", "no member judge")):
                self.unscored_reason = "tie"
        return self


class Failure(BaseModel):
    """Why an episode of a run failed, and whose fault it was: a role's (its model broke the
    conversation) or the infrastructure's (a server, a call, a bug of ours), which a run
    retries on resume and never scores."""

    role: FailureRole
    kind: str
    message: str

    @property
    def infrastructure(self) -> bool:
        return self.role == "infrastructure"


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

    schema_version: Literal[1, 2] = RESULT_SCHEMA_VERSION
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


class RunSettings(BaseModel):
    """A run manifest's ``config``: everything that defines what a run runs. Hashed: a run
    resumes only with the same settings."""

    model_config = ConfigDict(extra="allow")

    clinicians: list[dict[str, Any]] = Field(
        default_factory=list, description="Each clinician model's public settings (no keys)."
    )
    patient: dict[str, Any] = Field(default_factory=dict)
    judges: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The judge models (several: an ensemble; none: no judge).",
    )
    judge_mode: Literal["per-criterion", "batched"] | None = None
    repeats: int | None = None
    seed: int | None = None
    max_turns: int | None = None
    min_turns: int | None = None
    timeout_s: float | None = None
    error_budget: int | None = None
    scenarios: list[str] = Field(default_factory=list)
    personas: list[str] = Field(default_factory=list)


class RunManifest(BaseModel):
    """What defines a run and what it ran with, stored with the run (after Inspect AI's
    ``EvalSpec``). ``config`` and ``hashes`` (of every scenario, rubric, persona and prompt
    template) are hashed into the run's config hash; ``versions`` are recorded, not hashed:
    resuming with a newer clinsim is allowed, a changed scenario, persona, prompt, rubric or
    model is not. Version 1; manifests stored before the field existed read as version 1."""

    model_config = ConfigDict(extra="allow")

    manifest_version: Literal[1] = 1
    config: RunSettings = Field(default_factory=RunSettings)
    hashes: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="scenarios, rubrics, personas, prompts: name -> sha256"
    )
    versions: dict[str, Any] = Field(
        default_factory=dict, description="clinsim's version and each model's (not hashed)."
    )
    episodes: int = Field(default=0, description="Episodes planned.")
