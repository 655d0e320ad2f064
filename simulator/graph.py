"""The episode state machine (LangGraph): patient and clinician nodes, a routing function, and
a judge node that runs once the conversation has ended, for episodes that have a judge. An
episode starts from its opening (``initial_state``), so every superstep is one model call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from personas import Persona
from scenarios import Scenario
from simulator.grader_address import FLAG as GRADER_FLAG
from simulator.grader_address import addresses_grader
from simulator.judging import Judge
from simulator.llm import BackendError, ChatBackend, ModelConfig, RetryPolicy, with_retries
from simulator.patient import (
    case_numbers,
    clinician_system_prompt,
    conversation_for,
    disclosed_facts,
    numbers_in,
    patient_system_prompt,
    strip_end_marker,
    ungrounded_numbers,
)
from simulator.record import role_seed, transcript_from_state
from simulator.schemas import CallRecord, ErrorRecord, Role, Termination, Turn

NodeName = Literal["patient", "clinician", "judge", "__end__"]


class EpisodeState(TypedDict, total=False):
    """Graph state; plain JSON-able values so that any checkpointer can store it."""

    turns: list[dict[str, Any]]
    disclosed: list[str]
    errors: list[dict[str, Any]]
    termination: str | None
    next_role: Role
    judge: bool  # whether a judge node runs once the conversation has ended
    judged: dict[str, Any] | None


@dataclass
class EpisodeContext:
    """Everything an episode runs with that is not state: the run's dependencies."""

    scenario: Scenario
    persona: Persona
    clinician: ChatBackend
    patient: ChatBackend
    clinician_cfg: ModelConfig
    patient_cfg: ModelConfig
    judge: Judge | None = None
    seed: int = 0
    max_turns: int | None = None
    min_turns: int = 1
    timeout_s: float | None = None
    error_budget: int = 3
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    deadline: float | None = None
    before_turn: Callable[[Role], Awaitable[None]] | None = field(
        default=None, metadata={"doc": "Awaited before each turn: a UI pauses or steps here."}
    )

    def __post_init__(self) -> None:
        if self.timeout_s is not None and self.deadline is None:
            self.deadline = time.monotonic() + self.timeout_s
        self._patient_system = patient_system_prompt(self.scenario, self.persona)
        self._clinician_system = clinician_system_prompt(self.scenario)
        self._grounded = case_numbers(self.scenario)

    @property
    def turn_limit(self) -> int:
        return self.max_turns or self.scenario.max_turns

    def backend(self, role: Role) -> ChatBackend:
        return self.patient if role == "patient" else self.clinician

    def config(self, role: Role) -> ModelConfig:
        return self.patient_cfg if role == "patient" else self.clinician_cfg

    def system(self, role: Role) -> str:
        return self._patient_system if role == "patient" else self._clinician_system


def initial_state(ctx: EpisodeContext) -> dict[str, Any]:
    """The state an episode starts from: the scenario's opening turns, the clinician to speak."""
    facts = ctx.scenario.case.facts
    turns: list[dict[str, Any]] = []
    disclosed: list[str] = []
    for i, t in enumerate(ctx.scenario.opening, 1):
        new = []
        if t.role == "patient":
            new = [f for f in disclosed_facts(t.content, facts) if f not in disclosed]
            disclosed += new
        turns.append(
            Turn(
                index=i, role=t.role, content=t.content, source="opening", disclosed=new
            ).model_dump()
        )
    return {
        "turns": turns,
        "disclosed": disclosed,
        "errors": [],
        "termination": None,
        "next_role": "clinician",
        "judge": ctx.judge is not None,
        "judged": None,
    }


def _fail(
    state: EpisodeState, ctx: EpisodeContext, role: Role, kind: str, msg: str
) -> dict[str, Any]:
    errors = list(state.get("errors") or [])
    errors.append(
        ErrorRecord(role=role, kind=kind, message=msg, after_turn=len(state["turns"])).model_dump()
    )
    update: dict[str, Any] = {"errors": errors}
    if len(errors) > ctx.error_budget:
        update["termination"] = Termination.ERROR_BUDGET.value
    return update


async def _take_turn(role: Role, state: EpisodeState, ctx: EpisodeContext) -> dict[str, Any]:
    if ctx.before_turn is not None:
        await ctx.before_turn(role)
    if ctx.stop.is_set():
        return {"termination": Termination.STOPPED_BY_USER.value}
    remaining = None if ctx.deadline is None else ctx.deadline - time.monotonic()
    if remaining is not None and remaining <= 0:
        return {"termination": Termination.TIMEOUT.value}
    turns = [Turn.model_validate(t) for t in state["turns"]]
    backend = ctx.backend(role)
    call: CallRecord | None = None
    source: Literal["model", "human"]
    if getattr(backend, "is_human", False):
        answer = interrupt({"role": role, "turn_index": len(turns) + 1})
        if answer is None or (isinstance(answer, dict) and answer.get("stop")):
            return {"termination": Termination.STOPPED_BY_USER.value}
        content, source = str(answer).strip(), "human"
        if not content:
            return {}
    else:
        cfg = ctx.config(role)
        messages = conversation_for(role, ctx.system(role), turns)
        seed = role_seed(ctx.seed, role) + len(turns)

        async def call_model() -> Any:
            return await backend.complete(
                messages, temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=seed
            )

        try:
            calls = with_retries(call_model, ctx.retry)
            completion = await (calls if remaining is None else asyncio.wait_for(calls, remaining))
        except TimeoutError:
            return {"termination": Termination.TIMEOUT.value}
        except BackendError as e:
            return _fail(state, ctx, role, e.kind, str(e))
        content, source = completion.text.strip(), "model"
        call = CallRecord(
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_s=completion.latency_s,
            finish_reason=completion.finish_reason,
        )
    content, ended = strip_end_marker(content)
    flags: list[str] = []
    if call is not None and call.finish_reason == "length":
        flags.append("truncated")
    clinician_turns = sum(1 for t in turns if t.role == "clinician" and t.source != "opening")
    if role == "clinician":
        clinician_turns += 1
    if ended and clinician_turns < max(1, ctx.min_turns):
        # Neither side may end before the clinician has had min_turns real turns (at least one).
        ended = False
        flags.append("early_end_ignored")
    if not content and not ended:
        return _fail(state, ctx, role, "bad_response", f"{role} gave an empty reply")

    update: dict[str, Any] = {}
    new_turns = list(state["turns"])
    if content:
        disclosed = list(state.get("disclosed") or [])
        new: list[str] = []
        if role == "patient":
            new = [
                f for f in disclosed_facts(content, ctx.scenario.case.facts) if f not in disclosed
            ]
            grounded = ctx._grounded.union(
                *(numbers_in(t.content) for t in turns if t.role == "clinician")
            )
            if ungrounded_numbers(content, grounded):
                flags.append("ungrounded_numbers")
            update["disclosed"] = disclosed + new
        elif addresses_grader(content):
            flags.append(GRADER_FLAG)
        new_turns.append(
            Turn(
                index=len(turns) + 1,
                role=role,
                content=content,
                source=source,
                disclosed=new,
                call=call,
                flags=flags,
            ).model_dump()
        )
    update["turns"] = new_turns
    if ended:
        update["termination"] = (
            Termination.PATIENT_ENDED if role == "patient" else Termination.CLINICIAN_ENDED
        ).value
    elif role == "clinician" and clinician_turns >= ctx.turn_limit:
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
    out = await ctx.judge.judge(ctx.scenario, transcript)
    return {"judged": out.model_dump(mode="json")}


def route(state: EpisodeState) -> NodeName:
    """Where to go next: whoever speaks next, or once the conversation has ended the judge
    (if the episode has one and it has not judged yet), else the end."""
    if state.get("termination"):
        return "judge" if state.get("judge") and not state.get("judged") else "__end__"
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
