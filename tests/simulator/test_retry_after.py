"""Retry-After, in both of its forms, honoured up to the retry policy's maximum."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

from simulator.llm import RetryPolicy
from simulator.llm._openai import retry_after_seconds

NOW = datetime(2026, 10, 21, 7, 28, tzinfo=UTC).timestamp()


def test_both_forms_are_read_and_nothing_else_is() -> None:
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("1.5") == 1.5
    date = format_datetime(datetime(2026, 10, 21, 7, 28, 45, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds(date, now=NOW) == 45.0
    past = format_datetime(datetime(2026, 10, 21, 7, 0, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds(past, now=NOW) == 0.0
    for bad in (None, "", "soon", "nan", "inf", "-inf"):
        assert retry_after_seconds(bad, now=NOW) in (None, 0.0), bad
    assert retry_after_seconds("-5") == 0.0


def test_the_wait_is_the_servers_but_at_most_the_policys_maximum() -> None:
    policy = RetryPolicy(max_delay_s=30.0)
    rng = random.Random(0)
    assert policy.delay(0, 12.0, rng) == 12.0
    assert policy.delay(0, 3600.0, rng) == 30.0
