"""Case facts of imported scenarios: drafts in source order -> facts with ids and rubric groups.

Deterministic: the same drafts give the same facts and ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from scenarios._schema import Demographics, Fact
from scenarios.importers._text import Sex, keywords, one_line

FactKind = Literal["symptom", "history", "medication", "social", "exam", "test", "context", "other"]

# At most this many hidden facts per scenario; the patient simulator has to hold them all.
MAX_FACTS = 40


@dataclass
class FactDraft:
    """A fact before ids are given; ``group`` lets rubric criteria point at facts."""

    text: str
    kind: FactKind = "other"
    volunteer: bool = False
    group: str = ""


def build_facts(
    drafts: Iterable[FactDraft], cap: int = MAX_FACTS
) -> tuple[list[Fact], dict[str, list[str]], int]:
    """Facts with ids f01, f02 ... in order, at most ``cap`` of them.

    Returns the facts, the fact ids by group, and how many drafts the cap dropped.
    Empty or duplicate texts are dropped silently (they carry nothing).
    """
    kept: list[FactDraft] = []
    seen: set[str] = set()
    for d in drafts:
        text = one_line(d.text)
        if len(text) < 2 or not re.search(r"\w", text) or text.lower() in seen:
            continue
        seen.add(text.lower())
        kept.append(FactDraft(text, d.kind, d.volunteer, d.group))
    dropped = max(0, len(kept) - cap)
    kept = kept[:cap]
    width = max(2, len(str(len(kept))))
    facts: list[Fact] = []
    groups: dict[str, list[str]] = {}
    for i, d in enumerate(kept, start=1):
        fid = f"f{i:0{width}d}"
        facts.append(
            Fact(id=fid, text=d.text, keywords=keywords(d.text), volunteer=d.volunteer, kind=d.kind)
        )
        if d.group:
            groups.setdefault(d.group, []).append(fid)
    return facts, groups, dropped


def demographics(age: int | None, sex: Sex | None, details: str | None) -> Demographics:
    return Demographics(age=age, sex=sex, details=details or None)
