"""OpenAI HealthBench rows -> scenarios.

A row's ``prompt`` is the conversation so far; the model under test answers after the last
user turn, and the physician-written ``rubrics`` grade that answer. The rubric is kept exactly
(criterion text, points, tags); HealthBench has no hidden case facts, so the facts are the
user turns' sentences (all volunteered: the patient has already said them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from scenarios._schema import (
    HEALTHBENCH_AXIS_TAGS,
    Axis,
    Criterion,
    Dimension,
    OpeningTurn,
    PatientCase,
    Provenance,
    Scenario,
    TaskFamily,
    slug,
)
from scenarios.importers._deployment import HEALTH_ASSISTANT_PROMPT
from scenarios.importers._facts import FactDraft, build_facts
from scenarios.importers._report import ImportReport
from scenarios.importers._text import detect_language, shorten, split_sentences
from scenarios.yamlio import DataFileError, Row, read_jsonl

# HealthBench grades one answer to the prompt, so the simulated chat stops after it.
HEALTHBENCH_MAX_TURNS = 1

# Axis for a criterion without an ``axis:*`` tag (its tags are left as they are).
DEFAULT_AXIS = Axis.ACCURACY

# Example themes that map to a task family; any other theme gives ``general``.
THEME_FAMILY: dict[str, TaskFamily] = {
    "theme:emergency_referrals": TaskFamily.TRIAGE,
}

Role = Literal["patient", "clinician"]
_ROLES: dict[str, Role] = {"user": "patient", "assistant": "clinician"}
_SYSTEM_ROLES = {"system", "developer"}
_ID_PREFIX = "hb-"
_SHORT_ID_LEN = 8


def import_healthbench(path: Path) -> ImportReport:
    """Read a HealthBench JSONL file; rows whose rubric the schema cannot hold are skipped
    (each named, with the reason, in ``report.skipped``); malformed rows raise DataFileError."""
    path = Path(path)
    rows = read_jsonl(path)
    report = ImportReport(kind="healthbench", path=path, rows=len(rows))
    ids = _scenario_ids(rows)
    for row in rows:
        prompt_id = row.get("prompt_id", str)
        turns, system_texts = _turns(row)
        criteria, problem = _criteria(row)
        if problem is None:
            problem = _opening_problem(turns)
        if problem is not None:
            report.skipped.append(f"line {row.line} (prompt_id {prompt_id}): {problem}")
            continue
        report.scenarios.append(_scenario(row, ids[prompt_id], turns, system_texts, criteria))
    return report


def _scenario_ids(rows: list[Row]) -> dict[str, str]:
    """``hb-`` + the shortest prefix (at least 8 characters) that is unique in the file."""
    first_line: dict[str, int] = {}
    slugs: dict[str, str] = {}
    for row in rows:
        pid = row.get("prompt_id", str)
        if pid in first_line:
            raise row.error(
                f"duplicate prompt_id, also on line {first_line[pid]}",
                field_name="prompt_id",
                value=pid,
            )
        first_line[pid] = row.line
        slugs[pid] = slug(pid, max_len=120 - len(_ID_PREFIX))
    by_slug: dict[str, str] = {}
    for pid, s in slugs.items():
        if s in by_slug:
            raise DataFileError(
                rows[0].path,
                f"prompt_ids {by_slug[s]!r} and {pid!r} give the same scenario id",
                line=first_line[pid],
                field="prompt_id",
            )
        by_slug[s] = pid
    out: dict[str, str] = {}
    all_slugs = list(slugs.values())
    for pid, s in slugs.items():
        n = min(_SHORT_ID_LEN, len(s))
        while n < len(s) and (s[n - 1] in "-._" or sum(o.startswith(s[:n]) for o in all_slugs) > 1):
            n += 1
        out[pid] = _ID_PREFIX + s[:n]
    return out


def _turns(row: Row) -> tuple[list[tuple[Role, str]], list[str]]:
    """The prompt's (role, content) turns in clinsim roles, and the system turns' texts."""
    prompt = row.get("prompt", list)
    turns: list[tuple[Role, str]] = []
    system: list[str] = []
    for i, turn in enumerate(prompt):
        where = f"prompt[{i}]"
        if not isinstance(turn, dict):
            raise row.error("expected an object with 'role' and 'content'", field_name=where)
        role, content = turn.get("role"), turn.get("content")
        if not isinstance(content, str):
            raise row.error("expected a string", field_name=f"{where}.content", value=content)
        if role in _SYSTEM_ROLES:
            if content.strip():
                system.append(content.strip())
        elif role in _ROLES:
            turns.append((_ROLES[role], content))
        else:
            raise row.error(
                "unknown role; expected user, assistant or system",
                field_name=f"{where}.role",
                value=role,
            )
    return turns, system


def _opening_problem(turns: list[tuple[Role, str]]) -> str | None:
    if not turns or turns[-1][0] != "patient":
        return "the prompt does not end with a user turn, so there is nothing to answer"
    for i, (_, content) in enumerate(turns):
        if not content:
            return f"turn {i + 1} of the prompt is empty"
    return None


def _criteria(row: Row) -> tuple[list[Criterion], str | None]:
    """The rubric as criteria c01, c02 ...; or a reason the schema cannot represent it."""
    rubrics = row.get("rubrics", list)
    if not rubrics:
        return [], "the row has no rubric criteria"
    width = max(2, len(str(len(rubrics))))
    out: list[Criterion] = []
    for i, item in enumerate(rubrics):
        where = f"rubrics[{i}]"
        if not isinstance(item, dict):
            raise row.error("expected an object", field_name=where)
        text, tags = item.get("criterion"), item.get("tags", [])
        points: Any = item.get("points")
        if not isinstance(text, str):
            raise row.error("expected a string", field_name=f"{where}.criterion", value=text)
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise row.error("expected a list of strings", field_name=f"{where}.tags")
        problem = _points_problem(points)
        if problem is None and len(text) < 3:
            problem = f"criterion text {text!r} is shorter than 3 characters"
        if problem is not None:
            return [], f"rubrics[{i}] cannot be kept as given: {problem}"
        axis = next((HEALTHBENCH_AXIS_TAGS[t] for t in tags if t in HEALTHBENCH_AXIS_TAGS), None)
        out.append(
            Criterion(
                id=f"c{i + 1:0{width}d}",
                criterion=text,
                points=int(points),
                axis=axis or DEFAULT_AXIS,
                critical=False,
                tags=list(tags),
            )
        )
    if not any(c.points > 0 for c in out):
        return [], "no criterion has positive points, so nothing could be scored"
    return out, None


def _points_problem(points: Any) -> str | None:
    if isinstance(points, bool) or not isinstance(points, (int, float)):
        return f"points {points!r} is not a number"
    if points != int(points):
        return f"points {points!r} is not a whole number"
    if points == 0:
        return "points is 0 (the schema allows -10..-1 and 1..10)"
    if not -10 <= points <= 10:
        return f"points {points!r} is outside -10..10"
    return None


def _scenario(
    row: Row,
    scenario_id: str,
    turns: list[tuple[Role, str]],
    system_texts: list[str],
    criteria: list[Criterion],
) -> Scenario:
    prompt_id = row.get("prompt_id", str)
    example_tags = row.get("example_tags", list, required=False) or []
    if not all(isinstance(t, str) for t in example_tags):
        raise row.error("expected a list of strings", field_name="example_tags")
    user_texts = [c for role, c in turns if role == "patient"]
    drafts = [
        FactDraft(sentence, kind="context", volunteer=True)
        for text in user_texts
        for sentence in split_sentences(text)
    ]
    facts, _, dropped = build_facts(drafts)
    if not facts:  # e.g. user turns of punctuation only
        facts, _, _ = build_facts([FactDraft(" ".join(user_texts), "context", True)])
    family = next((THEME_FAMILY[t] for t in example_tags if t in THEME_FAMILY), TaskFamily.GENERAL)
    system_prompt = "\n\n".join([HEALTH_ASSISTANT_PROMPT, *system_texts])
    note = (
        "Rubric: HealthBench's physician-written rubric, kept exactly as given (criterion "
        "text, points, tags). Patient facts: derived by clinsim from the user turns "
        "(one per sentence); they are not part of HealthBench."
    )
    if dropped:
        note += f" {dropped} later sentence(s) were not kept as facts (cap)."
    try:
        return Scenario(
            id=scenario_id,
            title="HealthBench: " + shorten(user_texts[0], 60),
            dimension=Dimension.SMARTSERV,
            family=family,
            specialty="general medicine",
            language=detect_language("\n".join(user_texts)),
            system_prompt=system_prompt,
            case=PatientCase(facts=facts),
            opening=[OpeningTurn(role=role, content=content) for role, content in turns],
            max_turns=HEALTHBENCH_MAX_TURNS,
            rubric=criteria,
            provenance=Provenance(
                source=f"OpenAI HealthBench (prompt_id {prompt_id})",
                rubric_origin="physician_written",
                physician_validated=False,
                license="MIT",
                reference=prompt_id,
                note=note,
            ),
            tags=["healthbench", *example_tags],
        )
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise row.error(f"cannot build a valid scenario: {where}: {first['msg']}") from None
