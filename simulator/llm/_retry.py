"""The one place that decides what is retried: 429, 5xx, timeouts, dropped connections."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from simulator.llm._base import BackendError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server's Retry-After wins when longer."""

    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = min(self.max_delay_s, self.base_delay_s * (2**attempt))
        jittered = rng.uniform(0, backoff)
        if retry_after is not None:
            return min(self.max_delay_s, max(retry_after, jittered))
        return jittered


NO_RETRY = RetryPolicy(attempts=1)


async def with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    on_retry: Callable[[BackendError, int, float], None] | None = None,
) -> T:
    """Call ``fn``; retry retryable BackendErrors per ``policy``; re-raise the last one."""
    for attempt in range(policy.attempts):
        try:
            return await fn()
        except BackendError as e:
            if not e.retryable or attempt == policy.attempts - 1:
                raise
            rng = rng or random.Random()  # only now: seeding one costs more than a call
            wait = policy.delay(attempt, e.retry_after, rng)
            if on_retry:
                on_retry(e, attempt + 1, wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
