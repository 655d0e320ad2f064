"""Token prices, per million tokens, by model spec pattern. An unknown price is ``None``
("unpriced"), never $0.

Built in: the models that run on your own machine cost nothing per token. Add or override
prices in a YAML file (``--prices FILE``, or ``$CLINSIM_HOME/prices.yaml``)::

    "openai:gpt-4o-mini": {input: 0.15, output: 0.60}
    "openai:my-vllm-*": {input: 0, output: 0}

Patterns are shell-style (``fnmatch``); the first matching pattern of the user's file wins,
then the built-ins. Prices change: check your provider's page, this project does not track them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from scenarios.yamlio import DataFileError, line_of, parse_yaml, read_text
from simulator.config import data_home

BUILTIN: dict[str, tuple[float, float]] = {
    "local:*": (0.0, 0.0),
    "hf:*": (0.0, 0.0),
    "scripted:*": (0.0, 0.0),
    "human": (0.0, 0.0),
}


class PriceFileError(ValueError):
    """A price file that cannot be used; ``str()`` is one line."""


@dataclass(frozen=True)
class PriceTable:
    entries: tuple[tuple[str, float, float], ...]

    def price(self, spec: str) -> tuple[float, float] | None:
        for pattern, inp, out in self.entries:
            if fnmatchcase(spec, pattern):
                return inp, out
        return None

    def cost(self, spec: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Dollars for these tokens, or None when the spec has no price."""
        p = self.price(spec)
        if p is None:
            return None
        return (prompt_tokens * p[0] + completion_tokens * p[1]) / 1_000_000


def load_prices(path: Path | None = None) -> PriceTable:
    """The user's prices (``path``, else ``$CLINSIM_HOME/prices.yaml`` if present), then the
    built-ins. A file that cannot be used is a PriceFileError naming it (and the line)."""
    user: list[tuple[str, float, float]] = []
    if path is None:
        default = data_home() / "prices.yaml"
        path = default if default.is_file() else None
    if path is not None:
        try:
            user = _read_prices(path)
        except DataFileError as e:
            raise PriceFileError(str(e)) from None
    builtin = [(k, v[0], v[1]) for k, v in BUILTIN.items()]
    return PriceTable(tuple(user + builtin))


def _read_prices(path: Path) -> list[tuple[str, float, float]]:
    example = "'\"openai:gpt-4o-mini\": {input: 0.15, output: 0.60}'"
    text = read_text(path, hint="a price table is a few lines: check the path")
    if not text.strip():
        raise DataFileError(path, f"file is empty; expected prices such as {example}")
    data, node = parse_yaml(path, text)
    if not isinstance(data, dict):
        raise DataFileError(
            path,
            "expected a mapping of spec pattern to {input, output} dollars per million tokens, "
            f"such as {example}",
        )
    user = []
    for pattern, value in data.items():
        price = _price(value)
        if price is None:
            raise DataFileError(
                path,
                f"price for {str(pattern)[:80]!r} must be {{input: N, output: N}} with "
                "non-negative dollars per million tokens",
                line=line_of(node, (str(pattern),)),
            )
        user.append((str(pattern), *price))
    return user


def _price(value: object) -> tuple[float, float] | None:
    """``{input: N, output: N}`` as two non-negative finite floats, else None."""
    if not isinstance(value, dict) or set(value) != {"input", "output"}:
        return None
    out = []
    for x in (value["input"], value["output"]):
        if isinstance(x, bool) or not isinstance(x, int | float):
            return None
        try:
            f = float(x)
        except OverflowError:  # an integer too large for a float
            return None
        if not math.isfinite(f) or f < 0:
            return None
        out.append(f)
    return out[0], out[1]
