"""Calibration: how far a judge agrees with human raters, next to how far the raters agree
with each other (the ceiling). The labels are read by ``judges._labels``.

The judge grades each (conversation, criterion) once, with the same prompts as it grades
episodes; each of its verdicts is compared with every human label of that pair. Independent
raters are compared pairwise on the pairs they both labelled (the ceiling); a tie-breaker
(CRAFT-MD's ``d3_tiebreak``) counts as a label for the judge but not in the ceiling.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Protocol

from judges._agreement import Agreement, agreement
from judges._labels import HumanLabel, LabelFormat, LabelledItem, LabelSet
from scenarios import Criterion
from simulator.schemas import RoleUsage, Turn, Verdict


class Grader(Protocol):
    """What calibration needs of a judge (RubricJudge and EnsembleJudge both are one)."""

    @property
    def label(self) -> str: ...

    async def grade(
        self,
        turns: Sequence[Turn],
        criteria: Sequence[Criterion],
        *,
        language: str = "en",
        context: str | None = None,
        usage: RoleUsage | None = None,
    ) -> list[Verdict]: ...


@dataclass
class Figures:
    judge: Agreement
    human: Agreement
    unscored: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge.to_dict(),
            "human": self.human.to_dict(),
            "unscored": self.unscored,
        }


@dataclass
class CalibrationReport:
    """Judge-vs-human and human-vs-human agreement, overall and per question or group."""

    judge: str
    mode: str
    labels_path: str
    format: LabelFormat
    items: int
    labels: int
    overall: Figures
    groups: dict[str, Figures]
    usage: RoleUsage
    predictions: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        j = self.overall.judge
        return {
            "judge": self.judge,
            "mode": self.mode,
            "labels": self.labels_path,
            "format": self.format,
            "items": self.items,
            "human_labels": self.labels,
            "n": j.n,
            "accuracy": _r(j.accuracy),
            "macro_f1": _r(j.macro_f1),
            "kappa": _r(j.kappa),
            "unscored": self.overall.unscored,
            "human": self.overall.human.to_dict(),
            "groups": {g: f.to_dict() for g, f in self.groups.items()},
            "usage": self.usage.model_dump(),
        }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def human_pairs(labels: Iterable[HumanLabel]) -> dict[tuple[str, str], list[tuple[bool, bool]]]:
    """Every pair of independent raters on every (item, criterion) both labelled, by (item,
    criterion). Tie-breakers are left out: they label only items the others disagreed on."""
    by_target: dict[tuple[str, str], dict[str, bool]] = defaultdict(dict)
    for lab in labels:
        if not lab.independent:
            continue
        by_target[(lab.item, lab.criterion)][lab.rater] = lab.met
    out: dict[tuple[str, str], list[tuple[bool, bool]]] = {}
    for target, raters in by_target.items():
        pairs = [(raters[a], raters[b]) for a, b in combinations(sorted(raters), 2)]
        if pairs:
            out[target] = pairs
    return out


def measure(
    labelset: LabelSet, verdicts: dict[tuple[str, str], Verdict]
) -> tuple[Figures, dict[str, Figures]]:
    """Agreement figures from the judge's verdicts by (item, criterion)."""
    judge_pairs: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    unscored: dict[str, int] = defaultdict(int)
    groups = sorted({item.groups[c] for item in labelset.items.values() for c in item.criteria})
    for lab in labelset.labels:
        group = labelset.items[lab.item].groups[lab.criterion]
        v = verdicts.get((lab.item, lab.criterion))
        if v is None or v.status == "unscored":
            unscored[group] += 1
            continue
        judge_pairs[group].append((v.status == "met", lab.met))
    human_by_group: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for (item, crit), pairs in human_pairs(labelset.labels).items():
        human_by_group[labelset.items[item].groups[crit]].extend(pairs)
    per_group = {
        g: Figures(agreement(judge_pairs[g]), agreement(human_by_group[g]), unscored[g])
        for g in groups
    }
    overall = Figures(
        agreement(p for g in groups for p in judge_pairs[g]),
        agreement(p for g in groups for p in human_by_group[g]),
        sum(unscored.values()),
    )
    return overall, per_group


async def calibrate(
    grader: Grader,
    labelset: LabelSet,
    *,
    mode: str,
    on_item: Callable[[int, int], None] | None = None,
) -> CalibrationReport:
    """Grade every labelled (conversation, criterion) once and compare with the humans."""
    import asyncio

    usage = RoleUsage()
    verdicts: dict[tuple[str, str], Verdict] = {}
    done = 0

    async def one(item: LabelledItem) -> None:
        nonlocal done
        criteria = list(item.criteria.values())
        got = await grader.grade(item.turns, criteria, context=item.context, usage=usage)
        for c, v in zip(criteria, got, strict=True):
            verdicts[(item.key, c.id)] = v
        done += 1
        if on_item is not None:
            on_item(done, len(labelset.items))

    await asyncio.gather(*(one(item) for item in labelset.items.values()))
    overall, groups = measure(labelset, verdicts)
    predictions = [
        {
            "item": key,
            "criterion": cid,
            "group": labelset.items[key].groups[cid],
            "status": v.status,
            "explanation": v.explanation,
            "evidence_turns": v.evidence_turns,
            "human": {
                lab.rater: lab.met
                for lab in labelset.labels
                if lab.item == key and lab.criterion == cid
            },
        }
        for (key, cid), v in sorted(verdicts.items())
    ]
    return CalibrationReport(
        judge=grader.label,
        mode=mode,
        labels_path=str(labelset.path),
        format=labelset.format,
        items=len(labelset.items),
        labels=len(labelset.labels),
        overall=overall,
        groups=groups,
        usage=usage,
        predictions=predictions,
    )
