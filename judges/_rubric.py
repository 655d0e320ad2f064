"""The rubric judge: one grader call per criterion (HealthBench's mode), structured output,
bounded retries, and ``unscored`` (raw reply kept) when a reply never parses."""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from judges._prompts import render
from judges._scoring import critical_pass, episode_score, unscored_count
from scenarios import Criterion, Scenario
from simulator.llm import BackendError, ChatBackend, ModelConfig, complete_structured
from simulator.schemas import (
    CallRecord,
    JudgeInfo,
    JudgeOutput,
    ModelInfo,
    RoleUsage,
    Transcript,
    Verdict,
)

LANGUAGE_NAMES = {"en": "English", "zh": "Chinese"}


class GraderReply(BaseModel):
    """What the grader must answer for one criterion."""

    criteria_met: bool
    explanation: str = ""
    evidence_turns: list[int] = Field(default_factory=list)

    @field_validator("criteria_met", mode="before")
    @classmethod
    def _yes_no(cls, v: object) -> object:
        if isinstance(v, str) and v.strip().lower() in {"yes", "met", "true"}:
            return True
        if isinstance(v, str) and v.strip().lower() in {"no", "not met", "not_met", "false"}:
            return False
        return v

    @field_validator("evidence_turns", mode="before")
    @classmethod
    def _ints(cls, v: object) -> object:
        if isinstance(v, int | str):
            v = [v]
        if isinstance(v, list):
            out = []
            for x in v:
                try:
                    out.append(int(str(x).strip().strip("[]")))
                except ValueError:
                    continue
            return out
        return v


class RubricJudge:
    """Grades a transcript criterion by criterion with one model."""

    def __init__(
        self,
        backend: ChatBackend,
        config: ModelConfig,
        *,
        mode: Literal["per-criterion"] = "per-criterion",
        attempts: int = 3,
        seed: int = 0,
        concurrency: int = 4,
    ) -> None:
        self.backend = backend
        self.config = config
        self.mode = mode
        self.attempts = attempts
        self.seed = seed
        self._limit = asyncio.Semaphore(concurrency)

    def prompt(self, scenario: Scenario, transcript: Transcript, criterion: Criterion) -> str:
        lang = scenario.language.split("-")[0]
        return render(
            "grader_per_criterion.md.j2",
            turns=transcript.turns,
            criterion=criterion,
            language=lang,
            language_name=LANGUAGE_NAMES.get(lang, scenario.language),
        )

    async def _grade(
        self,
        scenario: Scenario,
        transcript: Transcript,
        criterion: Criterion,
        n: int,
        usage: RoleUsage,
    ) -> Verdict:
        messages = [{"role": "user", "content": self.prompt(scenario, transcript, criterion)}]
        async with self._limit:
            try:
                res = await complete_structured(
                    self.backend,
                    messages,  # type: ignore[arg-type]
                    GraderReply,
                    attempts=self.attempts,
                    temperature=self.config.temperature,
                    max_tokens=self.config.max_tokens,
                    seed=self.seed + 1000 * n,
                )
            except BackendError as e:
                return Verdict(
                    criterion_id=criterion.id,
                    status="unscored",
                    points=criterion.points,
                    explanation=f"grader call failed: {e}",
                )
        for c in res.completions:
            usage.add(
                CallRecord(
                    prompt_tokens=c.prompt_tokens,
                    completion_tokens=c.completion_tokens,
                    latency_s=c.latency_s,
                    finish_reason=c.finish_reason,
                )
            )
        if res.value is None:
            return Verdict(
                criterion_id=criterion.id,
                status="unscored",
                points=criterion.points,
                explanation=f"grader reply unusable after {len(res.raw)} attempts: {res.error}",
                raw="\n---\n".join(res.raw),
            )
        valid_turns = {t.index for t in transcript.turns}
        explanation = res.value.explanation.strip()
        if res.completions[-1].finish_reason == "length":
            explanation += " [grader reply cut off at the token limit]"
        return Verdict(
            criterion_id=criterion.id,
            status="met" if res.value.criteria_met else "not_met",
            points=criterion.points,
            explanation=explanation,
            evidence_turns=sorted({i for i in res.value.evidence_turns if i in valid_turns}),
        )

    async def judge(self, scenario: Scenario, transcript: Transcript) -> JudgeOutput:
        usage = RoleUsage()
        verdicts = await asyncio.gather(
            *(self._grade(scenario, transcript, c, n, usage) for n, c in enumerate(scenario.rubric))
        )
        return JudgeOutput(
            verdicts=list(verdicts),
            score=episode_score(verdicts),
            critical_pass=critical_pass(verdicts, scenario.rubric),
            unscored=unscored_count(verdicts),
            judge=JudgeInfo(
                model=ModelInfo.model_validate(self.config.public()),
                mode=self.mode,
                seed=self.seed,
                usage=usage,
            ),
        )
