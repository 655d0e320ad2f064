"""Human labels for calibration: the two file formats, and the label types.

- CRAFT-MD expert labels (one JSON object a line with ``conversation_text`` and ``labels``):
  three yes/no questions asked of full doctor-AI / patient-AI conversations by dermatologists.
- Generic JSONL, one label a line::

    {"conversation": [{"role": "patient", "content": "..."}, {"role": "assistant", ...}],
     "criterion": "Asks how long the pain has lasted", "label": true, "rater": "dr-a",
     "conversation_id": "c17", "criterion_id": "duration", "group": "history",
     "points": 5, "context": "background shown to the grader"}

  ``conversation_id``, ``criterion_id``, ``group``, ``points`` (default 1; negative for an
  undesirable behaviour, then ``label`` true means it happened), ``context`` and ``tiebreak``
  (true for a rater who labels only where others disagreed) are optional.
  Roles ``patient``/``user`` are the patient, ``clinician``/``assistant``/``doctor`` the model;
  ``system`` turns are skipped. Labels: true/false, yes/no, met/not_met, 1/0.

A tie-breaker (CRAFT-MD's ``d3_tiebreak``, or a generic row with ``tiebreak``) is a label that
is not ``independent``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from scenarios import Criterion, DataFileError, slug
from scenarios.yamlio import read_jsonl
from simulator.schemas import Role, Turn
from simulator.store import EpisodeRow, Review

LabelFormat = Literal["craftmd", "jsonl"]

CRAFTMD_QUESTIONS: dict[str, tuple[str, str, str]] = {
    # label key -> (criterion id, axis, criterion text). The wording is the project's
    # paraphrase of the study's questions, not the annotators' exact instructions.
    "Q1_one_most_likely_dx_reachable": (
        "q1-dx-reachable",
        "accuracy",
        "The information gathered in this conversation is enough to arrive at one most "
        "likely diagnosis (the case's correct diagnosis is given in the background).",
    ),
    "Q2_covers_all_key_vignette_info": (
        "q2-covers-vignette",
        "completeness",
        "The conversation brings out all the key information of the case vignette given in "
        "the background.",
    ),
    "Q3_patient_ai_used_medical_terminology": (
        "q3-patient-terminology",
        "communication",
        "The PATIENT (not the assistant) uses medical terminology: technical terms that a lay "
        "person would not normally use.",
    ),
}
_CRAFT_TURN = re.compile(r"(?:^|\n)\s*(Doctor-AI|Patient-AI)\s*:\s*")
_TRUE = {"true", "yes", "met", "1", "y"}
_FALSE = {"false", "no", "not_met", "not met", "0", "n"}
_PATIENT_ROLES = {"patient", "user"}
_CLINICIAN_ROLES = {"clinician", "assistant", "doctor", "model"}


@dataclass
class LabelledItem:
    """One conversation with the criteria humans answered about it."""

    key: str
    turns: list[Turn]
    context: str | None = None
    criteria: dict[str, Criterion] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HumanLabel:
    item: str
    criterion: str
    rater: str
    met: bool
    independent: bool = True  # False for a tie-breaker, who labels only where others disagreed


@dataclass
class LabelSet:
    path: Path
    format: LabelFormat
    items: dict[str, LabelledItem]
    labels: list[HumanLabel]
    skipped: int = 0

    def limited(self, n: int | None) -> LabelSet:
        """The first ``n`` conversations (in file order) and their labels."""
        if n is None:
            return self
        keep = dict(list(self.items.items())[:n])
        return LabelSet(
            self.path,
            self.format,
            keep,
            [lab for lab in self.labels if lab.item in keep],
            self.skipped,
        )


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    return None


def _criterion_id(text: str) -> str:
    """A stable id for a criterion given only as text."""
    return f"{slug(text, 40)}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def load_labels(path: Path | str) -> LabelSet:
    """Read a labels file (format detected from its first row). Bad input: DataFileError."""
    path = Path(path)
    rows = [(r.line, r.data) for r in read_jsonl(path)]
    first = rows[0][1]
    if "conversation_text" in first and "labels" in first:
        return _load_craftmd(path, rows)
    if "conversation" in first and "criterion" in first:
        return _load_generic(path, rows)
    raise DataFileError(
        path,
        "unknown labels format: expected CRAFT-MD rows (conversation_text, labels) or generic "
        "rows (conversation, criterion, label, rater)",
        line=rows[0][0],
    )


def labels_from_records(source: Path | str, records: Iterable[dict[str, Any]]) -> LabelSet:
    """Labels given as generic-format rows in memory (e.g. reviews read from a run store);
    ``source`` names where they came from, in messages and reports."""
    rows = list(enumerate(records, 1))
    if not rows:
        raise DataFileError(Path(source), "no labels")
    return _load_generic(Path(source), rows)


def labels_from_reviews(
    source: Path | str, reviews: Iterable[Review], episodes: Mapping[str, EpisodeRow]
) -> LabelSet:
    """Labels from reviews saved in the TUI (``RunStore.reviews``): one per (episode,
    criterion, reviewer), the episode's transcript as the conversation, the criterion's axis
    as its group. Reviews of episodes no longer stored (or stored without a result) are left
    out."""
    records: list[dict[str, Any]] = []
    for rv in reviews:
        row = episodes.get(rv["key"])
        result = row.result_obj() if row is not None else None
        if row is None or result is None:
            continue
        crit: dict[str, Any] = next(
            (dict(c) for c in row.rubric if c["id"] == rv["criterion_id"]), {}
        )
        records.append(
            {
                "conversation": [
                    {"role": t.role, "content": t.content} for t in result.transcript.turns
                ],
                "conversation_id": rv["key"],
                "criterion": rv["criterion"] or rv["criterion_id"],
                "criterion_id": rv["criterion_id"],
                "label": rv["human_status"],
                "rater": rv["reviewer"],
                "points": crit.get("points", 1),
                "axis": crit.get("axis", "accuracy"),
                "group": crit.get("axis", "accuracy"),
            }
        )
    return labels_from_records(source, records)


def _craft_turns(text: str, final: str | None) -> list[Turn]:
    parts = _CRAFT_TURN.split(text)
    turns: list[Turn] = []
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        content = content.strip()
        if content:
            role: Role = "clinician" if speaker == "Doctor-AI" else "patient"
            turns.append(Turn(index=len(turns) + 1, role=role, content=content))
    if final and final.strip():
        turns.append(Turn(index=len(turns) + 1, role="clinician", content=final.strip()))
    return turns


def _load_craftmd(path: Path, rows: list[tuple[int, dict[str, Any]]]) -> LabelSet:
    items: dict[str, LabelledItem] = {}
    labels: list[HumanLabel] = []
    skipped = 0
    for n, row in rows:
        for name in ("case_id", "conversation_text", "labels", "annotator"):
            if name not in row:
                raise DataFileError(path, "missing field in a CRAFT-MD row", line=n, field=name)
        if not isinstance(row["labels"], dict):
            raise DataFileError(path, "expected an object", line=n, field="labels")
        key = f"{row['case_id']}/{row.get('doctor_model', '')}"
        if key not in items:
            final = row.get("final_diagnosis")
            turns = _craft_turns(
                str(row["conversation_text"]), None if final is None else str(final)
            )
            if not turns:
                raise DataFileError(
                    path,
                    "no 'Doctor-AI :' or 'Patient-AI :' turns in the conversation",
                    line=n,
                    field="conversation_text",
                )
            context = (
                f"Case vignette: {row.get('case_vignette', '')}\n"
                f"Question the doctor had to answer: {row.get('question', '')}\n"
                f"Correct answer: {row.get('correct_diagnosis', '')}"
            )
            items[key] = LabelledItem(key=key, turns=turns, context=context)
        item = items[key]
        for question, value in row["labels"].items():
            if question not in CRAFTMD_QUESTIONS:
                raise DataFileError(
                    path,
                    f"unknown CRAFT-MD question; expected one of {sorted(CRAFTMD_QUESTIONS)}",
                    line=n,
                    field="labels",
                    value=question,
                )
            met = _bool(value)
            if met is None:
                skipped += 1  # not answered by this rater
                continue
            cid, axis, text = CRAFTMD_QUESTIONS[question]
            item.criteria.setdefault(
                cid,
                Criterion(id=cid, criterion=text, points=1, axis=axis),  # type: ignore[arg-type]
            )
            item.groups[cid] = question
            rater = str(row["annotator"])
            labels.append(HumanLabel(key, cid, rater, met, not rater.endswith("tiebreak")))
    return LabelSet(path, "craftmd", items, labels, skipped)


def _generic_turns(path: Path, n: int, conversation: Any) -> list[Turn]:
    if not isinstance(conversation, list) or not conversation:
        raise DataFileError(
            path,
            "expected a non-empty list of {role, content} turns",
            line=n,
            field="conversation",
        )
    turns: list[Turn] = []
    for t in conversation:
        if not isinstance(t, dict) or not isinstance(t.get("content"), str):
            raise DataFileError(
                path, "each turn needs 'role' and 'content' (text)", line=n, field="conversation"
            )
        role = str(t.get("role", "")).lower()
        if role == "system":
            continue
        if role not in _PATIENT_ROLES | _CLINICIAN_ROLES:
            raise DataFileError(
                path,
                "unknown role; use patient/user or clinician/assistant/doctor",
                line=n,
                field="conversation.role",
                value=role,
            )
        who: Role = "patient" if role in _PATIENT_ROLES else "clinician"
        turns.append(Turn(index=len(turns) + 1, role=who, content=t["content"]))
    if not turns:
        raise DataFileError(
            path,
            "no patient or clinician turn (only system turns); nothing to grade",
            line=n,
            field="conversation",
        )
    return turns


def _load_generic(path: Path, rows: list[tuple[int, dict[str, Any]]]) -> LabelSet:
    items: dict[str, LabelledItem] = {}
    labels: list[HumanLabel] = []
    skipped = 0
    for n, row in rows:
        for name in ("conversation", "criterion", "label", "rater"):
            if name not in row:
                raise DataFileError(path, "missing field", line=n, field=name)
        conversation = row["conversation"]
        key = str(
            row.get("conversation_id")
            or hashlib.sha256(json.dumps(conversation, sort_keys=True).encode()).hexdigest()[:12]
        )
        if key not in items:
            items[key] = LabelledItem(
                key=key,
                turns=_generic_turns(path, n, conversation),
                context=str(row["context"]) if row.get("context") else None,
            )
        item = items[key]
        text = str(row["criterion"]).strip()
        cid = str(row.get("criterion_id") or _criterion_id(text)).lower()
        try:
            criterion = Criterion(
                id=cid,
                criterion=text,
                points=int(row.get("points", 1)),
                axis=row.get("axis", "accuracy"),
            )
        except (ValidationError, ValueError, TypeError, OverflowError) as e:
            err = e.errors()[0] if isinstance(e, ValidationError) else None
            where = ".".join(map(str, err["loc"])) if err else "points"
            msg = err["msg"] if err else str(e)
            raise DataFileError(path, msg, line=n, field=where) from None
        known = item.criteria.get(cid)
        if known is not None and known.criterion != criterion.criterion:
            raise DataFileError(
                path,
                "criterion_id used with two different criterion texts in one conversation",
                line=n,
                field="criterion_id",
                value=cid,
            )
        item.criteria[cid] = criterion
        item.groups[cid] = str(row.get("group") or text)
        if row["label"] is None:
            skipped += 1
            continue
        met = _bool(row["label"])
        if met is None:
            raise DataFileError(
                path,
                "label must be true/false, yes/no, met/not_met or 1/0",
                line=n,
                field="label",
                value=row["label"],
            )
        labels.append(HumanLabel(key, cid, str(row["rater"]), met, not row.get("tiebreak")))
    return LabelSet(path, "jsonl", items, labels, skipped)
