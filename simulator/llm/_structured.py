"""Structured replies: ask with a schema, parse tolerantly, retry a bounded number of times.

Servers differ (json_schema, json_object with a schema, nothing), and small models wrap JSON in
prose or code fences. ``parse_json_reply`` finds the first JSON object in a reply and repairs the
common slips; ``complete_structured`` validates it against a pydantic model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from simulator.llm._base import ChatBackend, Completion, JsonSchema, Message
from simulator.llm._retry import RetryPolicy, with_retries

M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}


def _balanced_objects(text: str) -> list[str]:
    """Substrings of ``text`` that are brace-balanced ``{...}``, outside of strings."""
    found: list[str] = []
    depth = 0
    start = -1
    in_str = False
    escape = False
    for i, ch in enumerate(text):
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                found.append(text[start : i + 1])
    return found


def _repairs(candidate: str) -> list[str]:
    fixed = _TRAILING_COMMA.sub(r"\1", candidate)
    py = re.sub(r"\b(True|False|None)\b", lambda m: _PY_LITERALS[m.group(1)], fixed)
    return [candidate, fixed, py]


def parse_json_reply(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (fenced or bare, lightly repaired), or None."""
    if not isinstance(text, str) or not text.strip():
        return None
    pools = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for pool in pools:
        stripped = pool.strip()
        for candidate in ([stripped] if stripped.startswith("{") else []) + _balanced_objects(pool):
            for attempt in _repairs(candidate):
                try:
                    value = json.loads(attempt)
                except (json.JSONDecodeError, RecursionError):
                    continue
                if isinstance(value, dict):
                    return value
    return None


def schema_of(model: type[BaseModel]) -> JsonSchema:
    return JsonSchema(name=model.__name__, schema=model.model_json_schema())


@dataclass
class StructuredResult(Generic[M]):
    """The parsed value (None when every attempt failed), the raw replies, the calls made."""

    value: M | None
    raw: list[str] = field(default_factory=list)
    completions: list[Completion] = field(default_factory=list)
    error: str | None = None


async def complete_structured(
    backend: ChatBackend,
    messages: list[Message],
    model: type[M],
    *,
    attempts: int = 3,
    temperature: float = 0.0,
    max_tokens: int = 384,
    seed: int | None = None,
    retry: RetryPolicy | None = None,
) -> StructuredResult[M]:
    """Ask for ``model`` as JSON; re-ask on unparseable replies, at most ``attempts`` times.

    Infrastructure errors are retried by ``retry`` and re-raised when they persist; a reply
    that never parses is returned as ``value=None`` with every raw reply kept.
    """
    result: StructuredResult[M] = StructuredResult(value=None)
    fmt = schema_of(model)
    for i in range(attempts):
        call_seed = None if seed is None else seed + i

        async def call(s: int | None = call_seed) -> Completion:
            return await backend.complete(
                messages,
                temperature=temperature if i == 0 else max(temperature, 0.3),
                max_tokens=max_tokens,
                seed=s,
                response_format=fmt,
            )

        completion = await with_retries(call, retry or RetryPolicy())
        result.completions.append(completion)
        result.raw.append(completion.text)
        data = parse_json_reply(completion.text)
        if data is None:
            result.error = "no JSON object in the reply"
            continue
        try:
            result.value = model.model_validate(data)
            result.error = None
            return result
        except ValidationError as e:
            result.error = f"reply does not match the schema: {e.errors()[0]['msg']}"
    return result
