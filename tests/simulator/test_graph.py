"""The episode graph on the scripted backend: every termination reason, disclosure tracking,
people taking part through interrupt(), resume and fork."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from personas import PersonaLibrary
from scenarios import ScenarioLibrary
from simulator.config import EpisodeLimits
from simulator.episode import EpisodeRunner, PendingInput
from simulator.graph import EpisodeContext, route
from simulator.llm import NO_RETRY, ModelConfig, RetryPolicy, make_backend
from simulator.schemas import EpisodeResult, Termination
from simulator.session import EpisodeObserver, episode_context
from tests.conftest import grader_reply

SCENARIO = "triage-indigestion-chest-pain"
Script = Callable[[str, list[Any]], str]


@pytest.fixture(scope="module")
def library() -> ScenarioLibrary:
    return ScenarioLibrary.load()


def make_ctx(library: ScenarioLibrary, clinician: str, patient: str, **kw: Any) -> EpisodeContext:
    ccfg, pcfg = ModelConfig(spec=clinician), ModelConfig(spec=patient)
    kw.setdefault("retry", NO_RETRY)
    limits = {
        k: kw.pop(k)
        for k in ("max_turns", "min_turns", "timeout_s", "error_budget", "retry")
        if k in kw
    }
    return episode_context(
        library.get(kw.pop("scenario", SCENARIO)),
        PersonaLibrary.load().get("calm-adult"),
        clinician=(None if clinician == "human" else make_backend(ccfg), ccfg),
        patient=(None if patient == "human" else make_backend(pcfg), pcfg),
        limits=EpisodeLimits(**limits),
        **kw,
    )


async def run(ctx: EpisodeContext, runner: EpisodeRunner | None = None) -> EpisodeResult:
    out = await (runner or EpisodeRunner()).start(ctx)
    assert isinstance(out, EpisodeResult)
    return out


def roles(result: EpisodeResult) -> list[str]:
    return [t.role for t in result.transcript.turns]


async def test_patient_ends_with_marker_found_as_substring(library, script: Script) -> None:
    ctx = make_ctx(
        library,
        script("c", ["Does it come on when you climb stairs?", "Please call 911 now."]),
        script("p", ["Yes, on the stairs.", "OK, thank you, I will.[END]!!"]),
    )
    r = await run(ctx)
    assert r.transcript.termination is Termination.PATIENT_ENDED
    assert roles(r) == ["patient", "clinician", "patient", "clinician", "patient"]
    assert r.transcript.turns[-1].content == "OK, thank you, I will.!!"
    assert "[END]" not in r.transcript.turns[-1].content


async def test_clinician_ends(library, script: Script) -> None:
    ctx = make_ctx(library, script("c", ["Call an ambulance now. [end]"]), script("p", ["x"]))
    r = await run(ctx)
    assert r.transcript.termination is Termination.CLINICIAN_ENDED
    assert r.transcript.turns[-1].content == "Call an ambulance now."


async def test_max_turns_counts_clinician_turns(library, script: Script) -> None:
    ctx = make_ctx(library, script("c", ["q1", "q2", "q3"]), script("p", ["a1", "a2"]), max_turns=2)
    r = await run(ctx)
    assert r.transcript.termination is Termination.MAX_TURNS
    assert roles(r).count("clinician") == 2
    assert roles(r) == ["patient", "clinician", "patient", "clinician"]


async def test_early_end_is_ignored_until_min_turns(library, script: Script) -> None:
    ctx = make_ctx(
        library,
        script("c", ["Bye [END]", "How long has it lasted?", "Go to the ER."]),
        script("p", ["Bye then [END]", "Two days. Thanks [END]"]),
        min_turns=2,
    )
    r = await run(ctx)
    turns = r.transcript.turns
    assert "early_end_ignored" in turns[1].flags  # clinician's first [END]
    assert "early_end_ignored" in turns[2].flags  # patient's [END] before 2 clinician turns
    assert r.transcript.termination is Termination.PATIENT_ENDED
    assert roles(r).count("clinician") == 2


async def test_timeout(library, script: Script) -> None:
    ctx = make_ctx(
        library, script("c", [{"text": "slow", "delay_s": 5}]), script("p", ["x"]), timeout_s=0.3
    )
    r = await run(ctx)
    assert r.transcript.termination is Termination.TIMEOUT
    assert roles(r) == ["patient"]


async def test_an_episode_cut_off_by_its_time_limit_is_not_judged(library, script: Script) -> None:
    from judges import RubricJudge

    n = len(library.get(SCENARIO).rubric)
    jcfg = ModelConfig(spec=script("j", [grader_reply(True, [2])] * n))
    judge = RubricJudge(make_backend(jcfg), jcfg, concurrency=1)
    slow = script("c", ["How long?", {"text": "slow", "delay_s": 5}])
    ctx = make_ctx(library, slow, script("p", ["Two days."]), judge=judge, timeout_s=1.0)
    r = await run(ctx)
    assert r.transcript.termination is Termination.TIMEOUT
    assert r.verdicts == [] and r.score is None and r.judge is None
    assert judge.backend.calls == []  # type: ignore[attr-defined]


async def test_error_budget_attributes_the_role(library, script: Script) -> None:
    ctx = make_ctx(
        library,
        script("c", [{"error": "server"}, "q1", {"error": "timeout"}, {"error": "connection"}]),
        script("p", ["a1"]),
        error_budget=2,
    )
    r = await run(ctx)
    assert r.transcript.termination is Termination.ERROR_BUDGET
    assert [(e.role, e.kind) for e in r.transcript.errors] == [
        ("clinician", "server"),
        ("clinician", "timeout"),
        ("clinician", "connection"),
    ]
    assert roles(r) == ["patient", "clinician", "patient"]


async def test_retryable_fault_is_retried_in_one_place(library, script: Script) -> None:
    ctx = make_ctx(
        library,
        script("c", [{"error": "rate_limit"}, "Call 911. [END]"]),
        script("p", ["x"]),
        retry=RetryPolicy(attempts=2, base_delay_s=0.0),
    )
    r = await run(ctx)
    assert r.transcript.errors == []  # retried, not counted against the budget
    assert r.transcript.termination is Termination.CLINICIAN_ENDED


async def test_non_retryable_fault_is_not_retried(library, script: Script) -> None:
    ctx = make_ctx(
        library,
        script("c", [{"error": "auth"}, "never reached [END]"]),
        script("p", ["x"]),
        retry=RetryPolicy(attempts=5, base_delay_s=0.0),
        error_budget=0,
    )
    r = await run(ctx)
    assert r.transcript.termination is Termination.ERROR_BUDGET
    assert [e.kind for e in r.transcript.errors] == ["auth"]


async def test_empty_reply_is_an_error_of_that_role(library, script: Script) -> None:
    ctx = make_ctx(library, script("c", ["  ", "ok [END]"]), script("p", ["x"]))
    r = await run(ctx)
    assert [(e.role, e.kind) for e in r.transcript.errors] == [("clinician", "bad_response")]
    assert r.transcript.termination is Termination.CLINICIAN_ENDED


async def test_stopped_by_user(library, script: Script) -> None:
    ctx = make_ctx(library, script("c", ["q1", "q2", "q3"]), script("p", ["a1", "a2"]))

    class StopAfterTurnThree(EpisodeObserver):
        def on_turn(self, turn: Any) -> None:
            if turn.index == 3:
                ctx.stop.set()

    ctx.observer = StopAfterTurnThree()
    out = await EpisodeRunner().start(ctx)
    assert isinstance(out, EpisodeResult)
    assert out.transcript.termination is Termination.STOPPED_BY_USER
    assert len(out.transcript.turns) == 3


async def test_disclosure_tracking_records_first_disclosure_only(library, script: Script) -> None:
    ctx = make_ctx(
        library,
        script("c", ["Any pain on exertion?", "Anything else?", "Smoking?"]),
        script(
            "p",
            [
                "Yes, climbing stairs makes it worse.",
                "The stairs again, and it goes to my jaw.",
                "I smoke ten cigarettes a day.",
            ],
        ),
        max_turns=3,
    )
    r = await run(ctx)
    t = r.transcript.turns
    assert t[0].disclosed == ["f-burning", "f-antacid"]  # the opening line
    assert t[2].disclosed == ["f-exertion"]
    assert t[4].disclosed == ["f-radiation"]  # f-exertion not counted twice
    assert r.transcript.disclosed == ["f-burning", "f-antacid", "f-exertion", "f-radiation"]
    assert all(turn.disclosed == [] for turn in t if turn.role == "clinician")


async def test_ungrounded_numbers_are_flagged(library, script: Script) -> None:
    ctx = make_ctx(
        library,
        script("c", ["Is it worse after 3 flights of stairs?", "ok"]),
        script("p", ["Yes, after 3 flights. My pressure was 190 over 120."]),
        max_turns=2,
    )
    r = await run(ctx)
    # "3" echoes the clinician; 190/120 appear nowhere in the case: flagged
    assert "ungrounded_numbers" in r.transcript.turns[2].flags


async def test_clinician_never_sees_hidden_facts_or_rubric(library, script: Script) -> None:
    ctx = make_ctx(library, script("c", ["q1 [END]"]), script("p", ["x"]))
    await run(ctx)
    seen = "\n".join(m["content"] for call in ctx.clinician.backend.calls for m in call)  # type: ignore[attr-defined]
    scenario = library.get(SCENARIO)
    for fact in scenario.case.facts:
        if not fact.volunteer:
            assert fact.text not in seen
    for c in scenario.rubric:
        assert c.criterion not in seen
    assert scenario.case.diagnosis not in seen


async def test_human_patient_through_interrupt(library, script: Script) -> None:
    ctx = make_ctx(library, script("c", ["Where is the pain?", "Call 911 [END]"]), "human")
    runner = EpisodeRunner()
    out = await runner.start(ctx)
    assert isinstance(out, PendingInput) and out.role == "patient" and out.turn_index == 3
    out = await runner.answer(ctx, out.episode_id, "In my chest, and it spreads to my jaw.")
    assert isinstance(out, EpisodeResult)
    assert out.transcript.turns[2].source == "human"
    assert out.transcript.turns[2].disclosed == ["f-radiation"]
    assert out.transcript.termination is Termination.CLINICIAN_ENDED


async def test_human_can_stop(library, script: Script) -> None:
    ctx = make_ctx(library, "human", script("p", ["x"]))
    runner = EpisodeRunner()
    out = await runner.start(ctx)
    assert isinstance(out, PendingInput) and out.role == "clinician"
    out = await runner.answer(ctx, out.episode_id, None)
    assert isinstance(out, EpisodeResult)
    assert out.transcript.termination is Termination.STOPPED_BY_USER


async def test_resume_continues_from_the_checkpoint(library, script: Script) -> None:
    clin = script("c", ["q1", "q2", "q3 [END]"])
    ctx = make_ctx(library, clin, script("p", ["a1", "a2"]))
    ctx.stop.set()
    runner = EpisodeRunner()
    first = await runner.start(ctx, episode_id="ep1")
    assert isinstance(first, EpisodeResult)
    assert first.transcript.termination is Termination.STOPPED_BY_USER
    assert len(first.transcript.turns) == 1
    ctx.stop.clear()
    done = await runner.resume(ctx, "ep1")
    assert isinstance(done, EpisodeResult)
    assert done.transcript.termination is Termination.CLINICIAN_ENDED
    assert [t.content for t in done.transcript.turns][1:] == ["q1", "a1", "q2", "a2", "q3"]
    assert [t.index for t in done.transcript.turns] == [1, 2, 3, 4, 5, 6]


async def test_resume_after_a_stop_judges_the_whole_conversation_again(library, script) -> None:
    from judges import RubricJudge

    n = len(library.get(SCENARIO).rubric)
    # first judging (of the stopped, one-turn transcript): all not met; second: all met
    replies = [grader_reply(False)] * n + [grader_reply(True, [2])] * n
    jcfg = ModelConfig(spec=script("j", replies), temperature=0.0)
    judge = RubricJudge(make_backend(jcfg), jcfg, concurrency=1)
    ctx = make_ctx(library, script("c", ["Call 911 now [END]"]), script("p", ["x"]), judge=judge)
    ctx.stop.set()
    runner = EpisodeRunner()
    stopped = await runner.start(ctx, episode_id="ep2")
    assert isinstance(stopped, EpisodeResult) and all(
        v.status == "not_met" for v in stopped.verdicts
    )
    ctx.stop.clear()
    done = await runner.resume(ctx, "ep2")
    assert isinstance(done, EpisodeResult)
    assert done.transcript.termination is Termination.CLINICIAN_ENDED
    assert [v.status for v in done.verdicts] == ["met"] * n


async def test_fork_from_turn_n_with_another_clinician(library, script: Script) -> None:
    runner = EpisodeRunner()
    patient = script("p", ["a1", "a2", "a3"])
    ctx_a = make_ctx(library, script("ca", ["A1", "A2", "A3"]), patient, max_turns=3)
    a = await run(ctx_a, runner)
    ctx_b = make_ctx(library, script("cb", ["B2", "B3"]), patient, max_turns=3)
    ctx_b.patient = ctx_a.patient  # same patient script, continuing where it is
    b = await runner.fork(ctx_b, a.transcript.episode_id, at_turn=3)
    assert isinstance(b, EpisodeResult)
    assert [t.content for t in b.transcript.turns[:3]] == [
        "Hi, I've had bad indigestion for two "
        "days and the antacids aren't doing anything. Can you suggest something stronger?",
        "A1",
        "a1",
    ]
    # A used a1 and a2; the shared patient script answers B2 with its next reply, a3
    assert [t.content for t in b.transcript.turns[3:]] == ["B2", "a3", "B3"]
    assert b.transcript.forked_from == f"{a.transcript.episode_id}@3"
    assert b.transcript.termination is Termination.MAX_TURNS
    assert b.transcript.episode_id != a.transcript.episode_id
    # the original episode is untouched
    again = await runner.graph.aget_state(runner._config(a.transcript.episode_id))
    assert [t["content"] for t in again.values["turns"]][1::2] == ["A1", "A2", "A3"]


async def test_fork_from_a_saved_result(library, script: Script) -> None:
    a = await run(make_ctx(library, script("ca", ["A1", "A2 [END]"]), script("p", ["a1"])))
    saved = EpisodeResult.model_validate_json(a.model_dump_json())
    b = await EpisodeRunner().fork(
        make_ctx(library, script("cb", ["B2 [END]"]), script("p2", ["unused"])), saved, at_turn=3
    )
    assert isinstance(b, EpisodeResult)
    assert [t.content for t in b.transcript.turns[1:]] == ["A1", "a1", "B2"]
    assert b.transcript.disclosed == a.transcript.turns[0].disclosed
    with pytest.raises(ValueError, match="at_turn must be between 1 and"):
        await EpisodeRunner().fork(
            make_ctx(library, script("x", ["."]), script("y", ["."])), saved, at_turn=99
        )


async def test_judge_node_scores_the_transcript(library, script: Script) -> None:
    from judges import RubricJudge

    scenario = library.get(SCENARIO)
    replies = [
        grader_reply(c.id in {"ask-character", "escalate-emergency"}, [2]) for c in scenario.rubric
    ]
    jcfg = ModelConfig(spec=script("j", replies), temperature=0.0)
    judge = RubricJudge(make_backend(jcfg), jcfg, concurrency=1)
    ctx = make_ctx(library, script("c", ["Call 911 now [END]"]), script("p", ["x"]), judge=judge)
    r = await run(ctx)
    assert {v.criterion_id: v.status for v in r.verdicts}["escalate-emergency"] == "met"
    assert r.score == pytest.approx((5 + 10) / 32)
    assert r.critical_pass is True
    assert r.judge is not None and r.judge.usage.calls == len(scenario.rubric)


async def test_the_observer_sees_each_gate_turn_the_judging_and_the_end(
    library, script: Script
) -> None:
    from judges import RubricJudge

    scenario = library.get(SCENARIO)
    jcfg = ModelConfig(spec=script("j", [grader_reply(True, [2])] * len(scenario.rubric)))
    seen: list[str] = []

    class Watcher(EpisodeObserver):
        async def before_turn(self, role: Any) -> None:
            seen.append(f"gate:{role}")

        def on_turn(self, turn: Any) -> None:
            seen.append(f"turn:{turn.index}")

        def on_judging(self) -> None:
            seen.append("judging")

        def on_end(self, result: EpisodeResult) -> None:
            seen.append(f"end:{result.transcript.termination.value}")

    ctx = make_ctx(
        library,
        script("c", ["How long?", "Call 911 [END]"]),
        script("p", ["Two days."]),
        judge=RubricJudge(make_backend(jcfg), jcfg, concurrency=1),
        observer=Watcher(),
    )
    await run(ctx)
    assert seen == [
        "turn:1", "gate:clinician", "turn:2", "gate:patient", "turn:3", "gate:clinician",
        "turn:4", "judging", "end:clinician_ended",
    ]  # fmt: skip


def test_route_literal() -> None:
    assert route({"termination": "max_turns", "next_role": "patient", "judge": True}) == "judge"
    assert route({"termination": "max_turns", "judge": True, "judged": {"x": 1}}) == "__end__"
    assert route({"termination": "max_turns", "next_role": "patient", "judge": False}) == "__end__"
    assert route({"termination": None, "next_role": "patient"}) == "patient"
    assert route({"termination": None, "next_role": "clinician"}) == "clinician"


async def test_chinese_scenario_runs_on_scripted_backend(library, script: Script) -> None:
    zh = [s for s in library if s.language == "zh"]
    assert zh, "the library has Chinese scenarios"
    scenario = zh[0]
    hidden = next(f for f in scenario.case.facts if not f.volunteer and f.keywords)
    ctx = make_ctx(
        library,
        script("c", ["请问还有其他症状吗？", "建议您尽快就医。[END]"]),
        script("p", [f"有的，{hidden.keywords[0]}。"]),
        scenario=scenario.id,
    )
    r = await run(ctx)
    assert r.transcript.termination is Termination.CLINICIAN_ENDED
    assert hidden.id in r.transcript.turns[len(scenario.opening) + 1].disclosed
    assert "Simplified Chinese" in ctx.systems["patient"]


async def test_concurrent_episodes_share_one_runner(library, script: Script) -> None:
    runner = EpisodeRunner()
    ctxs = [
        make_ctx(library, script(f"c{i}", [f"q{i} [END]"]), script(f"p{i}", ["x"]))
        for i in range(8)
    ]
    results = await asyncio.gather(*(runner.start(c) for c in ctxs))
    assert sorted(r.transcript.turns[1].content for r in results) == sorted(  # type: ignore[union-attr]
        f"q{i}" for i in range(8)
    )
