"""The rubric judge: HealthBench's one grader call per criterion (``per-criterion``), or every
criterion of a rubric in one call (``batched``). Structured output, bounded retries, and
``unscored`` (raw reply kept) when a reply never parses: never a silent ``not_met``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from judges._prompts import language_name, render
from scenarios import Criterion, Scenario
from simulator.llm import (
    BackendError,
    ChatBackend,
    Completion,
    JsonSchema,
    LoopLimit,
    Message,
    ModelConfig,
    RetryPolicy,
    complete_structured,
    parse_json_reply,
    with_retries,
)
from simulator.schemas import (
    CallRecord,
    JudgeInfo,
    JudgeOutput,
    ModelInfo,
    RoleUsage,
    Transcript,
    Turn,
    UnscoredReason,
    Verdict,
)
from simulator.scoring import critical_pass, episode_score, unscored_count

JudgeMode = Literal["per-criterion", "batched"]
JUDGE_MODES: tuple[JudgeMode, ...] = ("per-criterion", "batched")
CUT_OFF_NOTE = " [grader reply cut off at the token limit]"


class GraderReply(BaseModel):
    """What the grader must answer for one criterion. ``criteria_met`` comes first so that a
    reply cut off at the token limit still carries the decision."""

    criteria_met: bool
    evidence_turns: list[int] = Field(default_factory=list)
    explanation: str = ""

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


EXPLANATION_MAX_CHARS = 300


def reply_schema(turns: Sequence[Turn]) -> dict[str, Any]:
    """GraderReply's schema, bounded for this transcript: evidence turns are its turn numbers
    (at most one of each), the explanation a few sentences. Without the bounds a small model
    counts 1, 2, 3, ... up to the token limit."""
    indices = [t.index for t in turns]
    return {
        "type": "object",
        "properties": {
            "criteria_met": {"type": "boolean"},
            "evidence_turns": {
                "type": "array",
                "items": {"type": "integer", "enum": indices} if indices else {"type": "integer"},
                "maxItems": max(1, min(len(indices), 32)),
            },
            "explanation": {"type": "string", "maxLength": EXPLANATION_MAX_CHARS},
        },
        "required": ["criteria_met", "evidence_turns", "explanation"],
        "additionalProperties": False,
    }


def batched_schema(keys: Sequence[str], turns: Sequence[Turn]) -> JsonSchema:
    """One object with a required GraderReply per criterion key (grammar-friendly)."""
    reply = reply_schema(turns)
    return JsonSchema(
        name="BatchedGraderReply",
        schema={
            "type": "object",
            "properties": {k: reply for k in keys},
            "required": list(keys),
            "additionalProperties": False,
        },
    )


def language_of(scenario: Scenario) -> str:
    return scenario.language.split("-")[0]


class RubricJudge:
    """Grades a transcript against a rubric with one model."""

    def __init__(
        self,
        backend: ChatBackend,
        config: ModelConfig,
        *,
        mode: JudgeMode = "per-criterion",
        attempts: int = 3,
        seed: int = 0,
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
    ) -> None:
        if mode not in JUDGE_MODES:
            raise ValueError(f"unknown judge mode {mode!r}; use {' or '.join(JUDGE_MODES)}")
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.backend = backend
        self.config = config
        self.mode: JudgeMode = mode
        self.attempts = attempts
        self.seed = seed
        self.retry = retry or RetryPolicy()
        self._limit = LoopLimit(concurrency)

    @property
    def label(self) -> str:
        return self.config.spec

    # ------------------------------------------------------------------ prompts

    def prompt(
        self,
        turns: Sequence[Turn],
        criterion: Criterion,
        *,
        language: str = "en",
        context: str | None = None,
    ) -> str:
        return render(
            "grader_per_criterion.md.j2",
            turns=turns,
            criterion=criterion,
            language=language,
            language_name=language_name(language),
            context=context,
        )

    def batched_prompt(
        self,
        turns: Sequence[Turn],
        keyed: Sequence[tuple[str, Criterion]],
        *,
        language: str = "en",
        context: str | None = None,
    ) -> str:
        return render(
            "grader_batched.md.j2",
            turns=turns,
            criteria=list(keyed),
            language=language,
            language_name=language_name(language),
            context=context,
        )

    # ------------------------------------------------------------------ grading

    async def grade(
        self,
        turns: Sequence[Turn],
        criteria: Sequence[Criterion],
        *,
        language: str = "en",
        context: str | None = None,
        usage: RoleUsage | None = None,
    ) -> list[Verdict]:
        """One verdict per criterion, in the rubric's order."""
        usage = usage if usage is not None else RoleUsage()
        if not criteria:
            return []
        if self.mode == "batched":
            return await self._grade_batched(turns, criteria, language, context, usage)
        return list(
            await asyncio.gather(
                *(
                    self._grade_one(turns, c, n, language, context, usage)
                    for n, c in enumerate(criteria)
                )
            )
        )

    def _verdict(
        self, criterion: Criterion, reply: GraderReply, turns: Sequence[Turn], cut_off: bool
    ) -> Verdict:
        valid_turns = {t.index for t in turns}
        explanation = reply.explanation.strip()
        if cut_off:
            explanation += CUT_OFF_NOTE
        return Verdict(
            criterion_id=criterion.id,
            status="met" if reply.criteria_met else "not_met",
            points=criterion.points,
            explanation=explanation,
            evidence_turns=sorted({i for i in reply.evidence_turns if i in valid_turns}),
        )

    async def _grade_one(
        self,
        turns: Sequence[Turn],
        criterion: Criterion,
        n: int,
        language: str,
        context: str | None,
        usage: RoleUsage,
    ) -> Verdict:
        prompt = self.prompt(turns, criterion, language=language, context=context)
        messages: list[Message] = [{"role": "user", "content": prompt}]
        async with self._limit:
            try:
                res = await complete_structured(
                    self.backend,
                    messages,
                    GraderReply,
                    attempts=self.attempts,
                    temperature=self.config.temperature,
                    max_tokens=self.config.max_tokens,
                    seed=self.seed + 1000 * n,
                    retry=self.retry,
                    response_schema=JsonSchema(name="GraderReply", schema=reply_schema(turns)),
                )
            except BackendError as e:
                return _unscored(criterion, f"grader call failed: {e}", reason="call_failed")
        _account(usage, res.completions)
        if res.value is None:
            return _unscored(
                criterion,
                f"grader reply unusable after {len(res.raw)} attempts: {res.error}",
                res.raw,
                reason="unparseable",
            )
        cut_off = res.completions[-1].finish_reason == "length"
        return self._verdict(criterion, res.value, turns, cut_off)

    async def _grade_batched(
        self,
        turns: Sequence[Turn],
        criteria: Sequence[Criterion],
        language: str,
        context: str | None,
        usage: RoleUsage,
    ) -> list[Verdict]:
        """All criteria in one call; criteria missing from a reply (cut off, skipped or
        malformed) are asked again, alone together, up to ``attempts`` calls in all."""
        keys = {f"c{n}": c for n, c in enumerate(criteria, 1)}
        verdicts: dict[str, Verdict] = {}
        raws: list[str] = []
        pending = list(keys)
        error = "no reply"
        reason: UnscoredReason = "missing"
        for attempt in range(self.attempts):
            keyed = [(k, keys[k]) for k in pending]
            messages: list[Message] = [
                {
                    "role": "user",
                    "content": self.batched_prompt(
                        turns, keyed, language=language, context=context
                    ),
                }
            ]
            completion = await self._call_batched(messages, pending, attempt, turns)
            if isinstance(completion, BackendError):
                error, reason = f"grader call failed: {completion}", "call_failed"
                break
            _account(usage, [completion])
            raws.append(completion.text)
            data = parse_json_reply(completion.text) or {}
            cut_off = completion.finish_reason == "length"
            still: list[str] = []
            for k in pending:
                reply = _reply_for(data, k, keys[k], len(pending) == 1)
                if reply is None:
                    still.append(k)
                    continue
                # Only the last entry of a cut-off reply can have a cut explanation.
                last = k == _last_key(data)
                verdicts[k] = self._verdict(keys[k], reply, turns, cut_off and last)
            pending = still
            if not pending:
                break
            error = (
                f"criterion missing or malformed in {attempt + 1} grader "
                f"repl{'y' if attempt == 0 else 'ies'}"
            )
        for k in pending:
            verdicts[k] = _unscored(keys[k], error, raws, reason=reason)
        return [verdicts[k] for k in keys]

    async def _call_batched(
        self, messages: list[Message], pending: list[str], attempt: int, turns: Sequence[Turn]
    ) -> Completion | BackendError:
        async def call() -> Completion:
            return await self.backend.complete(
                messages,
                temperature=self.config.temperature
                if attempt == 0
                else max(self.config.temperature, 0.3),
                max_tokens=min(32768, self.config.max_tokens * len(pending)),
                seed=self.seed + attempt,
                response_format=batched_schema(pending, turns),
            )

        async with self._limit:
            try:
                return await with_retries(call, self.retry)
            except BackendError as e:
                return e

    # ------------------------------------------------------------------ Judge protocol

    def info(self, usage: RoleUsage) -> JudgeInfo:
        return JudgeInfo(
            model=ModelInfo.model_validate(self.config.public()),
            mode=self.mode,
            seed=self.seed,
            usage=usage,
        )

    async def judge(self, scenario: Scenario, transcript: Transcript) -> JudgeOutput:
        usage = RoleUsage()
        verdicts = await self.grade(
            transcript.turns, scenario.rubric, language=language_of(scenario), usage=usage
        )
        return judge_output(verdicts, scenario.rubric, self.info(usage))


def judge_output(
    verdicts: list[Verdict],
    rubric: Sequence[Criterion],
    info: JudgeInfo,
    **extra: Any,
) -> JudgeOutput:
    return JudgeOutput(
        verdicts=verdicts,
        score=episode_score(verdicts),
        critical_pass=critical_pass(verdicts, rubric),
        unscored=unscored_count(verdicts),
        judge=info,
        **extra,
    )


def _unscored(
    criterion: Criterion, why: str, raw: Sequence[str] = (), *, reason: UnscoredReason
) -> Verdict:
    return Verdict(
        criterion_id=criterion.id,
        status="unscored",
        points=criterion.points,
        explanation=why,
        raw="\n---\n".join(raw) if raw else None,
        unscored_reason=reason,
    )


def _account(usage: RoleUsage, completions: Sequence[Completion]) -> None:
    for c in completions:
        usage.add(
            CallRecord(
                prompt_tokens=c.prompt_tokens,
                completion_tokens=c.completion_tokens,
                latency_s=c.latency_s,
                finish_reason=c.finish_reason,
            )
        )


def _last_key(data: dict[str, Any]) -> str | None:
    return list(data)[-1] if data else None


def _reply_for(
    data: dict[str, Any], key: str, criterion: Criterion, only: bool
) -> GraderReply | None:
    """The entry for ``key``: by key, by the criterion's id, or (when a single criterion was
    asked) a bare GraderReply object."""
    entry = data.get(key, data.get(criterion.id))
    if entry is None and only and "criteria_met" in data:
        entry = data
    if not isinstance(entry, dict):
        return None
    try:
        return GraderReply.model_validate(entry)
    except ValidationError:
        return None
