"""``scripted:FILE`` — replies read from a file, in order. A real provider for tests and replays.

The file is YAML (or JSON): a list whose items are either a reply string or a mapping with
``text`` and optionally ``finish_reason``, ``delay_s`` (wait before answering) or ``error``
(raise a backend fault of that kind instead, e.g. ``server`` or ``timeout``). A ``.txt`` file
holds replies separated by lines of ``---``.

A file may instead be a mapping ``{rules: [{match: REGEX, text: ...}, ...]}``: each call is
answered by the first rule whose regular expression is found in the conversation. Rules keep
no state, so the same conversation always gets the same reply, whatever the order of calls
(concurrent episodes, a resumed batch).
"""

from __future__ import annotations

import asyncio
import re
import stat
import time
from pathlib import Path
from typing import Any

import yaml

from simulator.llm._base import (
    BackendConfigError,
    BackendError,
    Completion,
    FaultKind,
    JsonSchema,
    Message,
)

MAX_SCRIPT_BYTES = 2_000_000
_FAULTS: set[str] = {"connection", "timeout", "rate_limit", "server", "auth", "bad_response"}


def _parse_rules(path: Path, rules: object) -> list[tuple[re.Pattern[str], dict[str, Any]]]:
    if not isinstance(rules, list) or not rules:
        raise BackendConfigError(f"scripted file {path}: 'rules' must be a non-empty list")
    out = []
    for n, rule in enumerate(rules, 1):
        if (
            not isinstance(rule, dict)
            or not isinstance(rule.get("match"), str)
            or not ("text" in rule or "error" in rule)
        ):
            raise BackendConfigError(
                f"scripted file {path}: rule {n} must be a mapping with 'match' and 'text'"
            )
        try:
            out.append((re.compile(rule["match"]), _checked_item(path, "rule", n, rule)))
        except re.error as e:
            raise BackendConfigError(f"scripted file {path}: rule {n}: bad regex: {e}") from None
    return out


def _checked_item(path: Path, what: str, n: int, item: dict[str, Any]) -> dict[str, Any]:
    if "error" in item and item["error"] not in _FAULTS:
        raise BackendConfigError(
            f"scripted file {path}: {what} {n}: error {item['error']!r} is not one of "
            f"{sorted(_FAULTS)}"
        )
    delay = item.get("delay_s", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay < 3600:
        raise BackendConfigError(
            f"scripted file {path}: {what} {n}: delay_s {delay!r} is not a number of seconds "
            "(0 to 3600)"
        )
    return item


class _TextLoader(yaml.SafeLoader):
    """Safe YAML in which a reply that looks like a date stays text."""


_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load(path: Path, text: str) -> object:
    if path.suffix == ".txt":
        chunks = [c.strip("\n") for c in text.split("\n---\n")]
        return [{"text": c} for c in chunks if c.strip()]
    try:
        return yaml.load(text, Loader=_TextLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        where = f" at line {e.problem_mark.line + 1}" if e.problem_mark else ""
        opened = (
            f" ({e.context} opened at line {e.context_mark.line + 1})"
            if e.context and e.context_mark
            else ""
        )
        raise BackendConfigError(
            f"scripted file {path}: invalid YAML/JSON{where}: {e.problem}{opened}"
        ) from None
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        raise BackendConfigError(
            f"scripted file {path}: invalid YAML/JSON: {str(e).splitlines()[0]}"
        ) from None


def _parse_items(path: Path, data: object) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not data:
        raise BackendConfigError(
            f"scripted file {path}: expected a non-empty list of replies, got {type(data).__name__}"
        )
    items = []
    for n, item in enumerate(data, 1):
        if isinstance(item, str):
            items.append({"text": item})
        elif isinstance(item, dict) and ("text" in item or "error" in item):
            items.append(_checked_item(path, "item", n, item))
        else:
            raise BackendConfigError(
                f"scripted file {path}: item {n} must be a string or a mapping with 'text'"
            )
    return items


class ScriptedBackend:
    """Answers each call with the next item of a file; runs out loudly, never silently."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.spec = f"scripted:{path}"
        try:
            info = self.path.stat()
            if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would be read without end
                raise BackendConfigError(
                    f"scripted file {self.path} is not a regular file; give the path of a file"
                )
            if info.st_size > MAX_SCRIPT_BYTES:
                raise BackendConfigError(
                    f"scripted file {self.path} is more than the {MAX_SCRIPT_BYTES} bytes "
                    "allowed; split it or trim it"
                )
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BackendConfigError(
                f"scripted file not found: {self.path} (check the path after 'scripted:')"
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise BackendConfigError(f"cannot read scripted file {self.path}: {e}") from None
        data = _load(self.path, text)
        self.rules = None
        self.items: list[dict[str, Any]] = []
        if isinstance(data, dict) and "rules" in data:
            self.rules = _parse_rules(self.path, data["rules"])
        else:
            self.items = _parse_items(self.path, data)
        self.position = 0
        self.calls: list[list[Message]] = []

    async def complete(
        self,
        messages: list[Message],
        *,
        temperature: float = 0.7,
        max_tokens: int = 256,
        seed: int | None = None,
        response_format: JsonSchema | None = None,
    ) -> Completion:
        start = time.perf_counter()
        self.calls.append(list(messages))
        item = self._next(messages)
        if item.get("delay_s"):
            await asyncio.sleep(float(item["delay_s"]))
        if "error" in item:
            kind: FaultKind = item["error"]
            raise BackendError(kind, f"scripted fault '{kind}' (item {self.position})")
        text = str(item["text"])
        prompt_words = sum(len(m["content"].split()) for m in messages)
        return Completion(
            text=text,
            finish_reason=str(item.get("finish_reason", "stop")),
            prompt_tokens=prompt_words,
            completion_tokens=len(text.split()),
            latency_s=time.perf_counter() - start,
            structured="prompt" if response_format else None,
        )

    def _next(self, messages: list[Message]) -> dict[str, Any]:
        if self.rules is not None:
            conversation = "\n".join(m["content"] for m in messages)
            for pattern, rule in self.rules:
                if pattern.search(conversation):
                    return rule
            raise BackendError(
                "exhausted", f"scripted file {self.path}: no rule matches this conversation"
            )
        if self.position >= len(self.items):
            raise BackendError(
                "exhausted",
                f"scripted file {self.path} has no reply left after {len(self.items)}",
            )
        self.position += 1
        return self.items[self.position - 1]

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
