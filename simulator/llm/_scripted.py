"""``scripted:FILE`` — replies read from a file, in order. A real provider for tests and replays.

The file is YAML (or JSON): a list whose items are either a reply string or a mapping with
``text`` and optionally ``finish_reason``, ``delay_s`` (wait before answering) or ``error``
(raise a backend fault of that kind instead, e.g. ``server`` or ``timeout``). A ``.txt`` file
holds replies separated by lines of ``---``.
"""

from __future__ import annotations

import asyncio
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

_FAULTS: set[str] = {"connection", "timeout", "rate_limit", "server", "auth", "bad_response"}


def _parse_items(path: Path, text: str) -> list[dict[str, Any]]:
    if path.suffix == ".txt":
        chunks = [c.strip("\n") for c in text.split("\n---\n")]
        return [{"text": c} for c in chunks if c.strip()]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise BackendConfigError(f"scripted file {path}: invalid YAML/JSON: {e}") from None
    if not isinstance(data, list) or not data:
        raise BackendConfigError(
            f"scripted file {path}: expected a non-empty list of replies, got {type(data).__name__}"
        )
    items = []
    for n, item in enumerate(data, 1):
        if isinstance(item, str):
            items.append({"text": item})
        elif isinstance(item, dict) and ("text" in item or "error" in item):
            if "error" in item and item["error"] not in _FAULTS:
                raise BackendConfigError(
                    f"scripted file {path}: item {n}: error {item['error']!r} is not one of "
                    f"{sorted(_FAULTS)}"
                )
            items.append(item)
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
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BackendConfigError(
                f"scripted file not found: {self.path} (check the path after 'scripted:')"
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise BackendConfigError(f"cannot read scripted file {self.path}: {e}") from None
        self.items = _parse_items(self.path, text)
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
        if self.position >= len(self.items):
            raise BackendError(
                "exhausted",
                f"scripted file {self.path} has no reply left after {len(self.items)}",
            )
        item = self.items[self.position]
        self.position += 1
        self.calls.append(list(messages))
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

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
