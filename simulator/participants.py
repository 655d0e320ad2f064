"""The two sides of a conversation, behind one protocol: a model (a chat backend with its
settings) or a person (asked through the graph's ``interrupt``; the episode waits, and the
front end answers with ``EpisodeRunner.answer``). The episode graph only ever asks a
participant to speak; it never asks which kind it is. After tau2-bench's participants, kept
async."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from langgraph.types import interrupt

from simulator.llm import ChatBackend, Message, ModelConfig, RetryPolicy, with_retries
from simulator.schemas import CallRecord, Role

PERSON_SPEC = "human"  # the spec that seats a person instead of a model


@dataclass(frozen=True)
class TurnRequest:
    """What a participant is asked for: turn ``index`` of the conversation, as ``role`` sees
    it (``messages``), with this turn's seed and retry policy."""

    role: Role
    index: int
    messages: list[Message]
    seed: int
    retry: RetryPolicy


@dataclass(frozen=True)
class Utterance:
    """What a participant said, as given (end marker and all), and what the call cost."""

    content: str
    source: Literal["model", "human"]
    call: CallRecord | None = None


class Stopped(Exception):
    """The person stopped the episode instead of answering."""


@runtime_checkable
class Participant(Protocol):
    """One side of the conversation. ``speak`` raises ``BackendError`` for a failed model call
    and ``Stopped`` when a person stops the episode."""

    role: Role
    config: ModelConfig
    kind: Literal["model", "person"]

    async def speak(self, request: TurnRequest) -> Utterance: ...


@dataclass
class ModelParticipant:
    """A model plays the role: one retried call per turn."""

    role: Role
    backend: ChatBackend
    config: ModelConfig
    kind: Literal["model", "person"] = "model"

    async def speak(self, request: TurnRequest) -> Utterance:
        cfg = self.config

        async def call_model() -> Any:
            return await self.backend.complete(
                request.messages,
                temperature=cfg.temperature,
                max_tokens=cfg.max_tokens,
                seed=request.seed,
            )

        completion = await with_retries(call_model, request.retry)
        return Utterance(
            content=completion.text.strip(),
            source="model",
            call=CallRecord(
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                latency_s=completion.latency_s,
                finish_reason=completion.finish_reason,
            ),
        )


@dataclass
class PersonParticipant:
    """A person plays the role: the episode pauses (a LangGraph interrupt, checkpointed) until
    the front end answers. No answer, or ``{"stop": True}``, stops the episode."""

    role: Role
    config: ModelConfig
    kind: Literal["model", "person"] = "person"

    async def speak(self, request: TurnRequest) -> Utterance:
        answer = interrupt({"role": request.role, "turn_index": request.index})
        if answer is None or (isinstance(answer, dict) and answer.get("stop")):
            raise Stopped
        return Utterance(content=str(answer).strip(), source="human")


def participant(role: Role, config: ModelConfig, backend: ChatBackend | None) -> Participant:
    """The participant a config seats: a person for the ``human`` spec, else the model behind
    ``backend``."""
    if config.spec == PERSON_SPEC:
        return PersonParticipant(role, config)
    if backend is None:
        raise ValueError(f"{role}: a model participant needs a backend")
    return ModelParticipant(role, backend, config)
