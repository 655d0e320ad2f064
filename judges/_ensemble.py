"""Ensembles: several judges grade the same transcript; the verdict per criterion is the
majority of the members' scored votes, and disagreement is reported per criterion and episode."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from judges._rubric import RubricJudge, judge_output, language_of
from scenarios import Criterion, Scenario
from simulator.schemas import (
    JudgeInfo,
    JudgeOutput,
    ModelInfo,
    RoleUsage,
    Transcript,
    Turn,
    Verdict,
)


def combine(criterion: Criterion, votes: dict[str, Verdict]) -> Verdict:
    """The majority of the scored votes. A tie, or no scored vote, is ``unscored``: the
    ensemble does not know, and says so."""
    statuses = {label: v.status for label, v in votes.items()}
    met = [v for v in votes.values() if v.status == "met"]
    not_met = [v for v in votes.values() if v.status == "not_met"]
    if len(met) == len(not_met):
        why = (
            f"ensemble tie: {len(met)} met, {len(not_met)} not met"
            if met
            else "no member judge gave a usable verdict"
        )
        return Verdict(
            criterion_id=criterion.id,
            status="unscored",
            points=criterion.points,
            explanation=why,
            votes=statuses,
            unscored_reason="tie",
        )
    majority = met if len(met) > len(not_met) else not_met
    first = majority[0]
    return Verdict(
        criterion_id=criterion.id,
        status=first.status,
        points=criterion.points,
        explanation=(
            f"{len(majority)} of {len(met) + len(not_met)} scored votes. {first.explanation}"
        ).strip(),
        evidence_turns=sorted({i for v in majority for i in v.evidence_turns}),
        votes=statuses,
    )


def vote_agreement(verdict: Verdict) -> float | None:
    """Share of the scored votes that agree with the majority (None without scored votes)."""
    scored = [s for s in (verdict.votes or {}).values() if s != "unscored"]
    if not scored:
        return None
    return max(scored.count("met"), scored.count("not_met")) / len(scored)


class EnsembleJudge:
    """Majority of several rubric judges (different models, or one model with other seeds)."""

    def __init__(self, members: Sequence[RubricJudge]) -> None:
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two judges")
        self.members = list(members)
        self.labels = [f"{n}:{m.label}" for n, m in enumerate(self.members, 1)]
        self.mode = self.members[0].mode

    @property
    def label(self) -> str:
        return "ensemble(" + ", ".join(m.label for m in self.members) + ")"

    async def grade(
        self,
        turns: Sequence[Turn],
        criteria: Sequence[Criterion],
        *,
        language: str = "en",
        context: str | None = None,
        usage: RoleUsage | None = None,
        member_usage: list[RoleUsage] | None = None,
    ) -> list[Verdict]:
        usages = member_usage if member_usage is not None else [RoleUsage() for _ in self.members]
        per_member = await asyncio.gather(
            *(
                m.grade(turns, criteria, language=language, context=context, usage=u)
                for m, u in zip(self.members, usages, strict=True)
            )
        )
        if usage is not None:
            for u in usages:
                usage.calls += u.calls
                usage.prompt_tokens += u.prompt_tokens
                usage.completion_tokens += u.completion_tokens
                usage.latency_s += u.latency_s
        return [
            combine(c, {label: mv[i] for label, mv in zip(self.labels, per_member, strict=True)})
            for i, c in enumerate(criteria)
        ]

    async def judge(self, scenario: Scenario, transcript: Transcript) -> JudgeOutput:
        usage = RoleUsage()
        member_usage = [RoleUsage() for _ in self.members]
        verdicts = await self.grade(
            transcript.turns,
            scenario.rubric,
            language=language_of(scenario),
            usage=usage,
            member_usage=member_usage,
        )
        agreements = [a for a in map(vote_agreement, verdicts) if a is not None]
        info = JudgeInfo(
            model=ModelInfo(spec="ensemble"),
            mode=self.mode,
            seed=None,
            usage=usage,
            members=[m.info(u) for m, u in zip(self.members, member_usage, strict=True)],
        )
        return judge_output(
            verdicts,
            scenario.rubric,
            info,
            agreement=sum(agreements) / len(agreements) if agreements else None,
            disputed=[v.criterion_id for v in verdicts if (vote_agreement(v) or 1.0) < 1.0],
        )
