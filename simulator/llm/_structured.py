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


_DECODER = json.JSONDecoder()
_MAX_STARTS = 64


def _first_object(text: str) -> dict[str, Any] | None:
    """The first ``{...}`` in ``text`` that decodes as a JSON object, trying each '{' in turn."""
    starts = 0
    index = text.find("{")
    while index != -1 and starts < _MAX_STARTS:
        try:
            value, _ = _DECODER.raw_decode(text, index)
        except (ValueError, RecursionError):  # JSONDecodeError; a number too long to read
            value = None
        if isinstance(value, dict):
            return value
        starts += 1
        index = text.find("{", index + 1)
    return None


def _repaired(text: str) -> str:
    text = _TRAILING_COMMA.sub(r"\1", text)
    return re.sub(r"\b(True|False|None)\b", lambda m: _PY_LITERALS[m.group(1)], text)


def _scan(body: str) -> tuple[list[str], bool, bool]:
    """Walk JSON-ish text from its first '{': the closers still open at the end, whether the
    end is inside a string, and whether the first object ended before the end."""
    stack: list[str] = []
    in_str = escape = False
    for ch in body:
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
            if not stack:
                return stack, False, True
    return stack, in_str, False


def close_truncated(text: str) -> str | None:
    """Close a JSON object cut off by the token limit: end the open string, drop a dangling
    key or comma, and close the open brackets. None if ``text`` does not start an object, the
    object is complete, or nothing would be left in it."""
    start = text.find("{")
    if start == -1:
        return None
    body = text[start:]
    stack, in_str, ended = _scan(body)
    if ended or not stack:
        return None
    if in_str:
        body = body.rstrip("\\") + '"'
    body = re.sub(r'(,\s*"[^"]*"\s*:?\s*|,\s*|:\s*)$', "", body.rstrip())
    body = re.sub(r'(\{)\s*"[^"]*"\s*:?\s*$', r"\1", body)  # a dangling first key
    if body.strip() == "{":
        return None  # nothing was said
    return body + "".join(reversed(stack))


def _cut_off_object(text: str) -> dict[str, Any] | None:
    """The object that starts at the first '{' when the text ends inside it and closing it
    makes valid JSON; None otherwise (the ordinary path handles complete objects)."""
    for candidate in (text, _repaired(text)):
        closed = close_truncated(candidate)
        if closed is None:
            continue
        try:
            value, _ = _DECODER.raw_decode(closed)
        except (ValueError, RecursionError):  # JSONDecodeError; a number too long to read
            continue
        if isinstance(value, dict):
            return value
    return None


def parse_json_reply(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (fenced or bare, lightly repaired, or closed when the
    reply was cut off), or None."""
    if not isinstance(text, str) or not text.strip():
        return None
    pools = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    cut = _cut_off_object(text)
    if cut is not None:
        # A reply cut off inside its outer object: close it, rather than take an inner object
        # (a batched grader reply holds one object per criterion).
        return cut
    for pool in pools:
        found = _first_object(pool)
        if found is None:
            found = _first_object(_repaired(pool))
        if found is not None:
            return found
    # prose with a stray '{' before a cut-off object
    index, starts = text.find("{", text.find("{") + 1), 1
    while index != -1 and starts < _MAX_STARTS:
        cut = _cut_off_object(text[index:])
        if cut is not None:
            return cut
        index, starts = text.find("{", index + 1), starts + 1
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
    response_schema: JsonSchema | None = None,
) -> StructuredResult[M]:
    """Ask for ``model`` as JSON; re-ask on unparseable replies, at most ``attempts`` times.

    Infrastructure errors are retried by ``retry`` and re-raised when they persist; a reply
    that never parses is returned as ``value=None`` with every raw reply kept.
    ``response_schema`` (default: ``model``'s schema) is what the server is asked for; it may
    be tighter than ``model``, e.g. with bounds that keep a small model from looping.
    """
    result: StructuredResult[M] = StructuredResult(value=None)
    fmt = response_schema or schema_of(model)
    for i in range(attempts):
        call_seed = None if seed is None else seed + i
        # a re-ask samples a little so that it does not repeat the unusable reply
        call_temperature = temperature if i == 0 else max(temperature, 0.3)

        async def call(s: int | None = call_seed, t: float = call_temperature) -> Completion:
            return await backend.complete(
                messages,
                temperature=t,
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
