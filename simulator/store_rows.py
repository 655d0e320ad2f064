"""The rows a run store holds and gives back, typed: an episode (``EpisodeRow``), the
criteria of its rubric (``RubricItem``), a reviewer's verdict (``Review``) and a run
(``RunInfo``). ``simulator.store`` reads and writes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from simulator.schemas import FailureRole, RunManifest


class RubricItem(TypedDict):
    """One criterion of a stored episode's rubric, as reports need it (its text stays in the
    scenario and the result)."""

    id: str
    axis: str
    points: int
    critical: bool


@dataclass
class EpisodeRow:
    """One stored episode (what reports, replay and the TUI read)."""

    run: str
    key: str
    pair_key: str
    clinician: str
    scenario_id: str
    persona_id: str
    trial: int
    seed: int
    dimension: str
    family: str
    language: str
    status: Literal["done", "failed"]
    failure_role: FailureRole | None = None
    failure_kind: str | None = None
    failure_message: str | None = None
    score: float | None = None
    critical_pass: bool | None = None
    unscored: int = 0
    rubric: list[RubricItem] = field(default_factory=list)
    judge_directed_turns: list[int] = field(default_factory=list)
    usage: dict[str, dict[str, Any]] = field(default_factory=dict)
    result: str | None = None
    attempts: int = 1
    finished_at: str = ""
    duration_s: float = 0.0

    def result_obj(self) -> Any:
        """The stored EpisodeResult (None for an episode that failed before a transcript)."""
        from simulator.schemas import EpisodeResult

        return None if self.result is None else EpisodeResult.model_validate_json(self.result)


_JSON_COLUMNS = ("rubric", "judge_directed_turns", "usage")
_COLUMNS = [
    "run", "key", "pair_key", "clinician", "scenario_id", "persona_id", "trial", "seed",
    "dimension", "family", "language", "status", "failure_role", "failure_kind",
    "failure_message", "score", "critical_pass", "unscored", "rubric", "judge_directed_turns",
    "usage", "result", "attempts", "finished_at", "duration_s",
]  # fmt: skip


class Review(TypedDict):
    """A reviewer's verdict on one criterion of one stored episode (saved from the TUI)."""

    run: str
    key: str
    criterion_id: str
    reviewer: str
    judge_status: str  # what the judge said: met, not_met or unscored
    human_status: Literal["met", "not_met"]
    note: str
    reviewed_at: str
    criterion: str  # the criterion's text, so that labels stand on their own


@dataclass
class RunInfo:
    name: str
    created_at: str
    config_hash: str
    manifest: dict[str, Any]  # as stored
    planned: int

    @property
    def spec(self) -> RunManifest:
        """The manifest, typed (one stored before manifests had a version reads as 1)."""
        return RunManifest.model_validate(self.manifest)
