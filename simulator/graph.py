"""The episode state machine (LangGraph): patient and clinician nodes, a routing function, and
a judge node that runs once the conversation has ended, for episodes that have a judge. An
episode starts from its opening (``initial_state``), so every superstep is one model call."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from simulator.llm import BackendError
from simulator.participants import Stopped, TurnRequest, Utterance
from simulator.patient import conversation_for
from simulator.record import role_seed, transcript_from_state
from simulator.schemas import ErrorRecord, Role, Termination, Turn
from simulator.state import EpisodeContext, EpisodeState, NodeName, initial_state

__all__ = ["EpisodeContext", "EpisodeState", "build_graph", "initial_state", "route"]


def _fail(
    state: EpisodeState, ctx: EpisodeContext, role: Role, kind: str, msg: str
) -> dict[str, Any]:
    errors = list(state.get("errors") or [])
    errors.append(
        ErrorRecord(role=role, kind=kind, message=msg, after_turn=len(state["turns"])).model_dump()
    )
    update: dict[str, Any] = {"errors": errors}
    if len(errors) > ctx.limits.error_budget:
        update["termination"] = Termination.ERROR_BUDGET.value
    return update


async def _gate(role: Role, ctx: EpisodeContext) -> Termination | None:
    """Wait for the front end (pause, step), then say whether the episode must end now."""
    await ctx.observer.before_turn(role)
    if ctx.stop.is_set():
        return Termination.STOPPED_BY_USER
    if ctx.deadline is not None and ctx.deadline - time.monotonic() <= 0:
        return Termination.TIMEOUT
    return None


async def _speak(role: Role, turns: list[Turn], ctx: EpisodeContext) -> Utterance:
    """Ask ``role``'s participant for the next turn, within what is left of the time limit."""
    request = TurnRequest(
        role=role,
        index=len(turns) + 1,
        messages=conversation_for(role, ctx.systems[role], turns),
        seed=role_seed(ctx.seed, role) + len(turns),
        retry=ctx.limits.retry,
    )
    speaker = ctx.participant(role)
    if ctx.deadline is None or speaker.kind == "person":  # a person is not timed
        return await speaker.speak(request)
    speaking = speaker.speak(request)
    return await asyncio.wait_for(speaking, ctx.deadline - time.monotonic())


async def _take_turn(role: Role, state: EpisodeState, ctx: EpisodeContext) -> dict[str, Any]:
    """One turn: gate, speak, check, decide."""
    if (ended := await _gate(role, ctx)) is not None:
        return {"termination": ended.value}
    turns = [Turn.model_validate(t) for t in state["turns"]]
    try:
        said = await _speak(role, turns, ctx)
    except Stopped:
        return {"termination": Termination.STOPPED_BY_USER.value}
    except TimeoutError:
        return {"termination": Termination.TIMEOUT.value}
    except BackendError as e:
        return _fail(state, ctx, role, e.kind, str(e))
    if said.source == "human" and not said.content:
        return {}  # a person sent nothing: ask again
    disclosed = list(state.get("disclosed") or [])
    checked = ctx.checks.check(role, said.content, said.call, turns, disclosed)
    if checked.empty:
        return _fail(state, ctx, role, "bad_response", f"{role} gave an empty reply")

    update: dict[str, Any] = {"turns": list(state["turns"])}
    if checked.content:
        if role == "patient":
            update["disclosed"] = disclosed + checked.disclosed
        update["turns"].append(
            Turn(
                index=len(turns) + 1,
                role=role,
                content=checked.content,
                source=said.source,
                disclosed=checked.disclosed,
                call=said.call,
                flags=checked.flags,
            ).model_dump()
        )
    if checked.ended:
        update["termination"] = (
            Termination.PATIENT_ENDED if role == "patient" else Termination.CLINICIAN_ENDED
        ).value
    elif role == "clinician" and checked.clinician_turns >= ctx.turn_limit:
        update["termination"] = Termination.MAX_TURNS.value
    update["next_role"] = "clinician" if role == "patient" else "patient"
    return update


async def patient_node(state: EpisodeState, runtime: Runtime[EpisodeContext]) -> dict[str, Any]:
    return await _take_turn("patient", state, runtime.context)


async def clinician_node(state: EpisodeState, runtime: Runtime[EpisodeContext]) -> dict[str, Any]:
    return await _take_turn("clinician", state, runtime.context)


async def judge_node(state: EpisodeState, runtime: Runtime[EpisodeContext]) -> dict[str, Any]:
    ctx = runtime.context
    if ctx.judge is None or state.get("judged"):
        return {}
    transcript = transcript_from_state(
        state, ctx, episode_id="pending", started_at="", duration_s=0
    )
    ctx.observer.on_judging()
    out = await ctx.judge.judge(ctx.scenario, transcript)
    return {"judged": out.model_dump(mode="json")}


def route(state: EpisodeState) -> NodeName:
    """Where to go next: whoever speaks next, or once the conversation has ended the judge
    (if the episode has one and it has not judged yet), else the end. An episode cut off by
    its time limit is not judged: a slow server or a tight limit is not the model's score."""
    if ended := state.get("termination"):
        judge = state.get("judge") and not state.get("judged") and ended != "timeout"
        return "judge" if judge else "__end__"
    return state.get("next_role", "clinician")


class _Router(Runnable[EpisodeState, NodeName]):
    """``route`` as LangGraph's conditional edges call it. A plain function given to
    ``add_conditional_edges`` is wrapped in a traced run (callback manager, run ids, metadata
    merges) on every step; this Runnable is called directly, which takes about a sixth off
    LangGraph's CPU per step (bench/RESULTS.md)."""

    name = "route"

    def invoke(
        self, input: EpisodeState, config: RunnableConfig | None = None, **kwargs: Any
    ) -> NodeName:
        return route(input)

    async def ainvoke(
        self, input: EpisodeState, config: RunnableConfig | None = None, **kwargs: Any
    ) -> NodeName:
        return route(input)


def build_graph(checkpointer: Any = None) -> Any:
    """Compile the episode graph; one compiled graph serves any number of episodes."""
    g = StateGraph(EpisodeState, context_schema=EpisodeContext)
    g.add_node("patient", patient_node)
    g.add_node("clinician", clinician_node)
    g.add_node("judge", judge_node)
    ends = ["patient", "clinician", "judge", END]
    # An episode starts from its opening (``initial_state``), so START routes too.
    for source in (START, "patient", "clinician"):
        g.add_conditional_edges(source, _Router(), ends)
    g.add_edge("judge", END)
    return g.compile(checkpointer=checkpointer)
