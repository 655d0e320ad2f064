"""AgentClinic (MedQA OSCE) cases -> scenarios.

The patient actor's script becomes hidden facts (primary symptom volunteered, everything else
to be asked for), then exam findings and test results as facts the patient can report if
asked; the correct diagnosis drives a critical rubric criterion. The rubric is derived by
clinsim: the source has none.
"""

from __future__ import annotations

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
)
from scenarios.importers._deployment import PRE_CONSULTATION_MAX_TURNS, PRE_CONSULTATION_PROMPT
from scenarios.importers._facts import MAX_FACTS, FactDraft, FactKind, build_facts, demographics
from scenarios.importers._report import ImportReport
from scenarios.importers._rubric import derived_rubric
from scenarios.importers._text import (
    flatten,
    is_young_child,
    names_diagnosis,
    one_line,
    parse_age,
    parse_sex,
    pretty_key,
    scalar_text,
    shorten,
    split_sentences,
    with_stop,
)
from scenarios.yamlio import Row, read_jsonl

# Patient_Actor sections in the order their facts are listed: (key, fact kind, rubric group).
_SECTIONS: list[tuple[str, FactKind, str]] = [
    ("History", "history", ""),
    ("Past_Medical_History", "history", "past_history"),
    ("Current_Medications", "medication", "medication"),
    ("Medications", "medication", "medication"),
    ("Drug_History", "medication", "medication"),
    ("Social_History", "social", ""),
    ("Review_of_Systems", "symptom", "associated"),
]
_KNOWN = {"Demographics", "Symptoms", *(k for k, _, _ in _SECTIONS)}


def import_agentclinic(path: Path) -> ImportReport:
    """Read an AgentClinic JSONL file (one ``OSCE_Examination`` a line); malformed rows raise
    DataFileError naming the line. Case numbers count rows from 0, as AgentClinic does."""
    path = Path(path)
    rows = read_jsonl(path)
    report = ImportReport(kind="agentclinic", path=path, rows=len(rows))
    for index, row in enumerate(rows):
        scenario, dropped, leaks = _scenario(row, index)
        if leaks:
            report.notes.append(
                f"line {row.line} (case {index}): {leaks} fact(s) naming the diagnosis were "
                "left out"
            )
        if dropped:
            report.notes.append(
                f"line {row.line} (case {index}): the last {dropped} fact(s) were left out "
                f"(cap of {MAX_FACTS})"
            )
        report.scenarios.append(scenario)
    return report


def _section(row: Row, data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value: Any = data.get(key)
    if value is None:
        raise row.error(f"missing '{key}'", field_name=f"{where}.{key}")
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise row.error(
            f"expected a non-empty {'string' if kind is str else 'object'}",
            field_name=f"{where}.{key}",
            value=value,
        )
    return value


def _texts(value: Any) -> list[str]:
    """Statements of a patient-actor section: sentences of a string, items of a list,
    'Key: value' lines of an object."""
    if isinstance(value, str):
        return split_sentences(value)
    if isinstance(value, list):
        out: list[str] = []
        for x in value:
            out += list(flatten(x)) if isinstance(x, (dict, list)) else [scalar_text(x)]
        return out
    if isinstance(value, dict):
        return list(flatten(value))
    return [scalar_text(value)]


def _scenario(row: Row, index: int) -> tuple[Scenario, int, int]:
    osce = row.get("OSCE_Examination", dict)
    where = "OSCE_Examination"
    actor = _section(row, osce, "Patient_Actor", dict, where)
    pa = f"{where}.Patient_Actor"
    diagnosis = one_line(_section(row, osce, "Correct_Diagnosis", str, where))
    demo = _section(row, actor, "Demographics", str, pa)
    symptoms = _section(row, actor, "Symptoms", dict, pa)
    primary = one_line(_section(row, symptoms, "Primary_Symptom", str, f"{pa}.Symptoms"))
    secondary = symptoms.get("Secondary_Symptoms") or []
    if isinstance(secondary, str):
        secondary = [secondary]
    if not isinstance(secondary, list):
        raise row.error("expected a list", field_name=f"{pa}.Symptoms.Secondary_Symptoms")

    drafts = [FactDraft(with_stop(primary), "symptom", volunteer=True)]
    drafts += [FactDraft(t, "symptom", group="associated") for x in secondary for t in _texts(x)]
    drafts.append(FactDraft(f"Patient: {one_line(demo)}.", "context"))
    for key, kind, group in _SECTIONS:
        if actor.get(key) is not None:
            drafts += [FactDraft(t, kind, group=group) for t in _texts(actor[key])]
    for key, value in actor.items():  # sections this importer does not know, kept as facts
        if key not in _KNOWN and value is not None:
            drafts += [FactDraft(f"{pretty_key(key)}: {t}", "other") for t in _texts(value)]
    tail: list[tuple[str, FactKind]] = [
        ("Physical_Examination_Findings", "exam"),
        ("Test_Results", "test"),
    ]
    for key, fkind in tail:
        value = osce.get(key)
        if value is not None:
            drafts += [FactDraft(t, fkind) for t in flatten(value)]
    # A fact naming the diagnosis (e.g. a biopsy "consistent with X") would let the patient
    # hand the answer over; such facts are left out, except the presenting complaint.
    leaks = [d for d in drafts[1:] if names_diagnosis(d.text, diagnosis)]
    drafts = [d for i, d in enumerate(drafts) if i == 0 or not names_diagnosis(d.text, diagnosis)]
    facts, groups, dropped = build_facts(drafts)  # the cap drops from the end: tests first

    age, sex = parse_age(demo), parse_sex(demo)
    opening = _opening(primary, demo, age, sex)
    history = one_line(actor.get("History")) if isinstance(actor.get("History"), str) else ""
    note = (
        "Case from AgentClinic's MedQA OSCE set. Facts flattened by clinsim from the patient "
        "actor script, exam findings and test results; rubric derived by clinsim from "
        "Correct_Diagnosis plus generic history-taking criteria. Not physician-validated."
    )
    if leaks:
        note += f" {len(leaks)} fact(s) naming the diagnosis were left out."
    if dropped:
        note += f" The last {dropped} fact(s) were left out (cap of {MAX_FACTS})."
    try:
        scenario = Scenario(
            id=f"agentclinic-{index}",
            title="AgentClinic: " + shorten(f"{one_line(demo)} with {_lower_first(primary)}", 70),
            dimension=Dimension.SMARTSERV,
            family=TaskFamily.PRE_CONSULTATION,
            specialty="general medicine",
            language="en",
            system_prompt=PRE_CONSULTATION_PROMPT,
            case=PatientCase(
                demographics=demographics(age, sex, one_line(demo)),
                history=history,
                facts=facts,
                goals=["Find out what is causing the problem and what to do about it."],
                diagnosis=diagnosis,
            ),
            opening=[OpeningTurn(role="patient", content=opening)],
            max_turns=PRE_CONSULTATION_MAX_TURNS,
            rubric=derived_rubric(diagnosis, groups),
            provenance=Provenance(
                source=f"AgentClinic MedQA (case {index})",
                rubric_origin="derived",
                physician_validated=False,
                license="MIT",
                reference=f"{row.path.name} line {row.line}",
                note=note,
            ),
            tags=["agentclinic", "medqa", "osce"],
        )
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise row.error(f"cannot build a valid scenario: {loc}: {first['msg']}") from None
    return scenario, dropped, len(leaks)


def _lower_first(text: str) -> str:
    """'Double vision' -> 'double vision'; acronyms ('CT scan', 'HIV') are left alone."""
    t = text.strip().rstrip(".")
    if len(t) > 1 and t[0].isupper() and not t[1].isupper():
        return t[0].lower() + t[1:]
    return t


def _opening(primary: str, demo: str, age: int | None, sex: str | None) -> str:
    """A natural first line: the patient (or a parent, for a young child) names the problem."""
    problem = _lower_first(primary)
    if is_young_child(demo, age):
        if age == 0 or (age is None and "newborn" in demo.lower()):
            who = "my baby"
        else:
            who = {"female": "my daughter", "male": "my son"}.get(sex or "", "my child")
        return f"Hello, I'm here about {who}. The main problem is {problem}."
    return f"Hello, I'd like some advice. The main problem is {problem}."
