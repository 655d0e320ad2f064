"""MediQ cases -> scenarios.

Each row's atomic ``facts`` become the hidden facts (the first one volunteered), the first
sentence of ``context`` is the patient's opening line, and the correct option
(``options[answer_idx]``) drives a critical diagnosis criterion. The rubric is derived by
clinsim: the source has none.

MediQ's own code reads ``atomic_facts``; the published data has ``facts``. This importer reads
``facts`` (falling back to ``atomic_facts``) and rejects a row with neither.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scenarios._schema import (
    Dimension,
    OpeningTurn,
    PatientCase,
    Provenance,
    Scenario,
    TaskFamily,
    slug,
)
from scenarios.importers._deployment import PRE_CONSULTATION_MAX_TURNS, PRE_CONSULTATION_PROMPT
from scenarios.importers._facts import MAX_FACTS, FactDraft, FactKind, build_facts, demographics
from scenarios.importers._report import ImportReport
from scenarios.importers._rubric import derived_rubric
from scenarios.importers._text import (
    Sex,
    names_diagnosis,
    one_line,
    parse_age,
    parse_sex,
    scalar_text,
    shorten,
    split_sentences,
    with_stop,
)
from scenarios.yamlio import Row, read_jsonl

# Word stems that suggest a fact's kind; the first kind that matches wins, else "other".
_KIND_STEMS: dict[FactKind, str] = {
    "test": r"biops culture level count smear serolog titer titre x-ray radiograph ultrasound "
    r"scan\b ct\b mri\b laborator lab\b labs\b histolog patholog antibod stain tests?\b "
    r"testing pcr\b koh\b microscop dermoscop",
    "exam": "exam inspection palpat auscultat vital temperature pulse heart.rate "
    "blood.pressure reveal demonstrat identified observed noted visible is.seen are.seen",
    "medication": "medication medicine drug prescri taking takes took applied applying cream "
    "ointment tablet treated.with therapy vaccin",
    "history": "history diagnosed previous prior past surgery operation",
    "social": r"smok alcohol drink cigarette work occupation job lives partner sexual travel "
    r"married student pets?\b school",
    "symptom": "complain pain itch prurit rash fever deny denies denied report feel swell "
    "lesion cough nause vomit bleed start began ago sore tired fatigue weak",
}
_KIND_PATTERNS = [
    (kind, re.compile(r"\b(" + "|".join(stems.split()) + ")", re.IGNORECASE))
    for kind, stems in _KIND_STEMS.items()
]

# Fact kinds whose facts the generic history-taking criteria point at.
_GROUPS = {"medication": "medication", "history": "past_history"}


def import_mediq(path: Path) -> ImportReport:
    """Read a MediQ JSONL file; a row whose ``answer`` names a different option than its
    ``answer_idx`` is skipped (named in ``report.skipped``); malformed rows raise
    DataFileError naming the line."""
    path = Path(path)
    rows = read_jsonl(path)
    report = ImportReport(kind="mediq", path=path, rows=len(rows))
    specialty = "dermatology" if "craft" in path.stem.lower() else "general medicine"
    seen: dict[str, int] = {}
    for row in rows:
        raw_id = row.get("id", (int, str))
        scenario_id = f"mediq-{slug(str(raw_id), max_len=100)}"
        if scenario_id in seen:
            raise row.error(
                f"duplicate id (gives scenario id {scenario_id!r}, as on line {seen[scenario_id]})",
                field_name="id",
                value=raw_id,
            )
        seen[scenario_id] = row.line
        answer, alias, problem = _answer(row)
        if problem is not None:
            report.skipped.append(f"line {row.line} (id {raw_id}): {problem}")
            continue
        scenario, dropped, leaks = _scenario(row, scenario_id, raw_id, answer, alias, specialty)
        if leaks:
            report.notes.append(
                f"line {row.line} (id {raw_id}): {leaks} fact(s) naming the diagnosis were left out"
            )
        if dropped:
            report.notes.append(
                f"line {row.line} (id {raw_id}): the last {dropped} fact(s) were left out "
                f"(cap of {MAX_FACTS})"
            )
        if alias:
            report.notes.append(
                f"line {row.line} (id {raw_id}): 'answer' {alias!r} is not an option's text; "
                f"used option {row.data['answer_idx']} {answer!r} and named both"
            )
        report.scenarios.append(scenario)
    return report


def _norm(text: str) -> str:
    return one_line(text).casefold()


def _answer(row: Row) -> tuple[str, str | None, str | None]:
    """(correct option text, another name for it from ``answer``, reason to skip the row)."""
    options = row.get("options", dict)
    idx = row.get("answer_idx", str)
    option = options.get(idx)
    if not isinstance(option, str) or not option.strip():
        raise row.error(
            f"answer_idx names no option with text; options are {sorted(options)}",
            field_name="answer_idx",
            value=idx,
        )
    answer = row.get("answer", str, required=False)
    if answer is None or _norm(answer) == _norm(option):
        return one_line(option), None, None
    other = [k for k, v in options.items() if isinstance(v, str) and _norm(v) == _norm(answer)]
    if other:
        why = (
            f"its labels disagree: answer {answer.strip()!r} is option {other[0]}, "
            f"but answer_idx is {idx} ({option.strip()!r})"
        )
        return "", None, why
    return one_line(option), one_line(answer), None


def _facts(row: Row) -> list[str]:
    key = "facts" if row.data.get("facts") else "atomic_facts"
    raw = row.data.get(key)
    if not raw:
        raise row.error(
            "no atomic facts: expected a non-empty list in 'facts' (MediQ's code reads "
            "'atomic_facts'; neither is present)",
            field_name="facts",
        )
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(f, str) for f in raw):
        raise row.error("expected a list of strings", field_name=key)
    texts = [re.sub(r"^\s*\d+\s*[.)]\s*", "", f).strip() for f in raw]
    return [t for t in texts if t]


def _kind(text: str) -> FactKind:
    return next((kind for kind, rx in _KIND_PATTERNS if rx.search(text)), "other")


def _opening(row: Row) -> str:
    context = row.get("context", (list, str))
    if isinstance(context, str):
        first = next(iter(split_sentences(context)), "")
    else:
        first = next((scalar_text(c) for c in context if scalar_text(c)), "")
    if not first:
        raise row.error(
            "empty context: its first sentence is the patient's opening", field_name="context"
        )
    return with_stop(first)


def _demographics(row: Row) -> tuple[int | None, Sex | None, str | None]:
    patient = row.get("patient", dict, required=False) or {}
    age_raw, sex_raw = patient.get("age"), patient.get("gender", patient.get("sex"))
    age = None
    if isinstance(age_raw, int) and not isinstance(age_raw, bool):
        age = age_raw if 0 <= age_raw <= 120 else None
    elif isinstance(age_raw, str):
        has_unit = re.search(r"[a-z]", age_raw, re.IGNORECASE)
        age = parse_age(age_raw if has_unit else f"{age_raw} years")
    sex = parse_sex(sex_raw) if isinstance(sex_raw, str) else None
    extra = [
        f"{k}: {scalar_text(v)}"
        for k, v in patient.items()
        if k not in {"age", "gender", "sex"} and scalar_text(v)
    ]
    return age, sex, "; ".join(extra) or None


def _scenario(
    row: Row,
    scenario_id: str,
    raw_id: Any,
    answer: str,
    alias: str | None,
    specialty: str,
) -> tuple[Scenario, int, int]:
    texts = _facts(row)
    drafts = []
    for i, text in enumerate(texts):
        kind = _kind(text)
        group = _GROUPS.get(kind, "")
        drafts.append(FactDraft(with_stop(text), kind, volunteer=i == 0, group=group))
    # Facts naming the diagnosis would hand the answer over; the first one always stays.
    leaks = [d for d in drafts[1:] if names_diagnosis(d.text, answer)]
    drafts = [d for i, d in enumerate(drafts) if i == 0 or not names_diagnosis(d.text, answer)]
    facts, groups, dropped = build_facts(drafts)
    opening = _opening(row)
    age, sex, details = _demographics(row)
    question = row.get("question", str, required=False)
    note = (
        "Case from MediQ. Facts are MediQ's atomic facts; the opening is the first sentence of "
        "its context; rubric derived by clinsim from the correct option plus generic "
        "history-taking criteria. Not physician-validated."
    )
    if question:
        note += f" Source question: {one_line(question)}"
    if alias:
        note += f" The row's 'answer' field reads {alias!r}."
    if leaks:
        note += f" {len(leaks)} fact(s) naming the diagnosis were left out."
    if dropped:
        note += f" The last {dropped} fact(s) were left out (cap of {MAX_FACTS})."
    try:
        scenario = Scenario(
            id=scenario_id,
            title="MediQ: " + shorten(opening, 60),
            dimension=Dimension.SMARTSERV,
            family=TaskFamily.PRE_CONSULTATION,
            specialty=specialty,
            language="en",
            system_prompt=PRE_CONSULTATION_PROMPT,
            case=PatientCase(
                demographics=demographics(age, sex, details),
                facts=facts,
                goals=["Find out what is causing the problem and what to do about it."],
                diagnosis=answer,
            ),
            opening=[OpeningTurn(role="patient", content=opening)],
            max_turns=PRE_CONSULTATION_MAX_TURNS,
            rubric=derived_rubric(answer, groups, alias=alias),
            provenance=Provenance(
                source=f"MediQ (id {raw_id})",
                rubric_origin="derived",
                physician_validated=False,
                license="CC BY 4.0",
                reference=str(raw_id),
                note=note,
            ),
            tags=["mediq"],
        )
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise row.error(f"cannot build a valid scenario: {loc}: {first['msg']}") from None
    return scenario, dropped, len(leaks)
