"""The one async protocol every model backend implements, and its records."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from pydantic import BaseModel, Field

FaultKind = Literal[
    "config",
    "connection",
    "timeout",
    "rate_limit",
    "quota",
    "server",
    "auth",
    "bad_request",
    "bad_response",
    "malformed",
    "exhausted",
]
# "malformed": the server's reply could not be read (not JSON, wrong shape): a server fault.
RETRYABLE: frozenset[str] = frozenset(
    {"connection", "timeout", "rate_limit", "server", "malformed"}
)
# Faults of the machinery rather than of a model's behaviour: a run retries them on resume and
# never scores them. Every FaultKind but "bad_response" (a reply that broke the conversation),
# plus "internal" (a bug of ours) and "judge_call" (a grader call that failed after retries).
INFRASTRUCTURE: frozenset[str] = frozenset(
    {"config", "connection", "timeout", "rate_limit", "quota", "server", "auth", "bad_request",
     "malformed", "exhausted", "internal", "judge_call"}
)  # fmt: skip


def is_infrastructure(kind: str) -> bool:
    """Whether a fault of this kind is the infrastructure's, not a model's."""
    return kind in INFRASTRUCTURE


StructuredMode = Literal["json_schema", "json_object", "grammar", "prompt"]


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class JsonSchema:
    """A structured-output request: a JSON Schema the reply should follow."""

    name: str
    schema: dict[str, Any]


class Completion(BaseModel):
    """One model call: the text and what it cost."""

    text: str
    finish_reason: str = Field(description="'stop', 'length', or what the server said.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    structured: StructuredMode | None = Field(
        default=None, description="How structured output was obtained, if it was asked for."
    )


class BackendError(Exception):
    """A failed model call, classified so that one place can decide what to retry."""

    def __init__(self, kind: FaultKind, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind: FaultKind = kind
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


class BackendConfigError(BackendError):
    """Bad input: unknown spec, missing file, unreachable server. The CLI exits with 2."""

    def __init__(self, message: str) -> None:
        super().__init__("config", message)


@runtime_checkable
class ChatBackend(Protocol):
    """An async chat model. ``complete`` never retries; ``simulator.llm.with_retries``
    does."""

    spec: str

    async def complete(
        self,
        messages: list[Message],
        *,
        temperature: float = 0.7,
        max_tokens: int = 256,
        seed: int | None = None,
        response_format: JsonSchema | None = None,
    ) -> Completion: ...

    async def check(self) -> None:
        """Fail fast with BackendConfigError when the backend cannot work at all."""
        ...

    async def aclose(self) -> None: ...


class LoopLimit:
    """At most ``n`` holders at once, like ``asyncio.Semaphore``, but usable from any event
    loop: a semaphore binds itself to the first loop it makes wait, and then fails in another
    one (code that calls a backend or judge through ``asyncio.run`` more than once). Each loop
    gets a semaphore of its own; those of closed loops are dropped."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._by_loop: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def _here(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._by_loop.get(loop)
        if sem is None:
            for old in [lp for lp in self._by_loop if lp.is_closed()]:
                del self._by_loop[old]
            sem = self._by_loop[loop] = asyncio.Semaphore(self.n)
        return sem

    async def __aenter__(self) -> None:
        await self._here().acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._here().release()
