"""Run, resume and fork episodes; assemble the saved result.

``EpisodeRunner`` wraps one compiled graph and a checkpointer. An episode is a LangGraph thread
whose id is the episode id: a person's turn pauses it (``PendingInput``), ``answer`` resumes it,
``resume`` continues one that was interrupted, and ``fork`` continues the first N turns of an
episode in a new thread, typically with another clinician model.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from simulator.graph import build_graph
from simulator.record import transcript_from_state
from simulator.schemas import (
    EpisodeResult,
    JudgeOutput,
    Termination,
    Turn,
)
from simulator.state import EpisodeContext, EpisodeObserver, initial_state
from simulator.version import __version__

RECURSION_LIMIT = 10_000


@dataclass(frozen=True)
class PendingInput:
    """The episode waits for a person playing ``role``; answer with ``EpisodeRunner.answer``."""

    episode_id: str
    role: str
    turn_index: int
    turns: list[Turn]


class EpisodeRunner:
    """Drives episodes through one compiled graph; the checkpointer makes them resumable."""

    def __init__(self, checkpointer: Any = None, *, resumable: bool = True) -> None:
        """``resumable=False``: no checkpoints at all, for episodes that only ever run from
        start to end with no person in them (a batch). Saving a checkpoint after every turn
        is then pure cost (bench/RESULTS.md); ``answer``, ``resume`` and ``fork`` need one."""
        self.checkpointer = (checkpointer or InMemorySaver()) if resumable else None
        self.graph = build_graph(self.checkpointer)
        self._meta: dict[str, dict[str, Any]] = {}

    def forget(self, episode_id: str) -> None:
        """Drop an episode's checkpoints and bookkeeping (a batch keeps only the result)."""
        self._meta.pop(episode_id, None)
        delete = getattr(self.checkpointer, "delete_thread", None)
        if delete is not None:
            delete(episode_id)

    def _config(self, episode_id: str) -> dict[str, Any]:
        if self.checkpointer is None:  # a thread id only names checkpoints
            return {"recursion_limit": RECURSION_LIMIT}
        return {"configurable": {"thread_id": episode_id}, "recursion_limit": RECURSION_LIMIT}

    async def _drive(
        self,
        graph_input: Any,
        ctx: EpisodeContext,
        episode_id: str,
    ) -> EpisodeResult | PendingInput:
        config = self._config(episode_id)
        meta = self._meta.setdefault(
            episode_id,
            {
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "t0": time.monotonic(),
                "forked_from": None,
            },
        )
        seen = meta.setdefault("seen", 0)
        last: dict[str, Any] = {}
        # Turns are validated for the observer only when it watches them (a batch does not).
        watching = type(ctx.observer).on_turn is not EpisodeObserver.on_turn
        async for update in self.graph.astream(
            graph_input, config, context=ctx, stream_mode="values"
        ):
            last = update
            turns = update.get("turns") or []
            if watching:
                for t in turns[seen:]:
                    ctx.observer.on_turn(Turn.model_validate(t))
            seen = max(seen, len(turns))
        meta["seen"] = seen
        if self.checkpointer is None:
            return self._finish(last, ctx, episode_id)
        snapshot = await self.graph.aget_state(config)
        if snapshot.interrupts:
            request = snapshot.interrupts[0].value
            return PendingInput(
                episode_id=episode_id,
                role=request["role"],
                turn_index=request["turn_index"],
                turns=[Turn.model_validate(t) for t in snapshot.values.get("turns") or []],
            )
        return self._finish(snapshot.values, ctx, episode_id)

    def _finish(self, state: dict[str, Any], ctx: EpisodeContext, episode_id: str) -> EpisodeResult:
        result = self._result(state, ctx, episode_id)
        ctx.observer.on_end(result)
        return result

    def _result(self, state: dict[str, Any], ctx: EpisodeContext, episode_id: str) -> EpisodeResult:
        meta = self._meta.get(episode_id, {})
        transcript = transcript_from_state(
            state,
            ctx,
            episode_id=episode_id,
            started_at=meta.get("started_at", ""),
            duration_s=time.monotonic() - meta.get("t0", time.monotonic()),
            forked_from=meta.get("forked_from"),
        )
        result = EpisodeResult(clinsim_version=__version__, transcript=transcript)
        if state.get("judged"):
            result = result.with_judgement(JudgeOutput.model_validate(state["judged"]))
        return result

    async def start(
        self,
        ctx: EpisodeContext,
        *,
        episode_id: str | None = None,
    ) -> EpisodeResult | PendingInput:
        """Run a new episode until it ends (or waits for a person); ``ctx.observer`` sees each
        turn, the judging and the end."""
        episode_id = episode_id or uuid.uuid4().hex[:12]
        return await self._drive(initial_state(ctx), ctx, episode_id)

    async def answer(
        self,
        ctx: EpisodeContext,
        episode_id: str,
        text: str | None,
    ) -> EpisodeResult | PendingInput:
        """Give a person's turn (None stops the episode) and run on."""
        value: Any = {"stop": True} if text is None else text
        return await self._drive(Command(resume=value), ctx, episode_id)

    async def resume(self, ctx: EpisodeContext, episode_id: str) -> EpisodeResult | PendingInput:
        """Continue an episode from its last checkpoint (after a stop, a crash or a pause)."""
        config = self._config(episode_id)
        snapshot = await self.graph.aget_state(config)
        if not snapshot.values:
            raise KeyError(f"no checkpoint for episode {episode_id!r}")
        if snapshot.values.get("termination") == Termination.STOPPED_BY_USER.value:
            # Reopen the conversation; verdicts on the partial transcript no longer apply.
            # Both talking nodes route with `route`, so either works as the writer.
            await self.graph.aupdate_state(
                config,
                {"termination": None, "judge": ctx.judge is not None, "judged": None},
                as_node="patient",
            )
        self._meta.setdefault(
            episode_id,
            {
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "t0": time.monotonic(),
                "forked_from": None,
                "seen": len(snapshot.values.get("turns") or []),
            },
        )
        return await self._drive(None, ctx, episode_id)

    async def fork(
        self,
        ctx: EpisodeContext,
        source: str | EpisodeResult,
        at_turn: int,
        *,
        episode_id: str | None = None,
    ) -> EpisodeResult | PendingInput:
        """Keep the first ``at_turn`` turns of ``source`` and continue with ``ctx`` (e.g. another
        clinician). ``source`` is an episode id in this runner's checkpointer, or a saved result."""
        if isinstance(source, EpisodeResult):
            turns = [t.model_dump() for t in source.transcript.turns]
            source_id = source.transcript.episode_id
        else:
            snapshot = await self.graph.aget_state(self._config(source))
            if not snapshot.values:
                raise KeyError(f"no checkpoint for episode {source!r}")
            turns = list(snapshot.values.get("turns") or [])
            source_id = source
        if not 1 <= at_turn <= len(turns):
            raise ValueError(f"at_turn must be between 1 and {len(turns)}, got {at_turn}")
        kept = turns[:at_turn]
        episode_id = episode_id or uuid.uuid4().hex[:12]
        config = self._config(episode_id)
        await self.graph.aupdate_state(config, initial_state(ctx, kept), as_node=kept[-1]["role"])
        self._meta[episode_id] = {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "t0": time.monotonic(),
            "forked_from": f"{source_id}@{at_turn}",
            "seen": at_turn,
        }
        for t in kept:
            ctx.observer.on_turn(Turn.model_validate(t))
        return await self._drive(None, ctx, episode_id)
