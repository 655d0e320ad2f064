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

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

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
    built-ins."""
    import yaml

    user: list[tuple[str, float, float]] = []
    if path is None:
        default = data_home() / "prices.yaml"
        path = default if default.is_file() else None
    if path is not None:
        try:
            data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise PriceFileError(f"{path}: cannot read prices: {e}".splitlines()[0]) from None
        if not isinstance(data, dict):
            raise PriceFileError(
                f"{path}: expected a mapping of spec pattern to {{input, output}} dollars per "
                "million tokens"
            )
        for pattern, value in data.items():
            if (
                not isinstance(value, dict)
                or set(value) - {"input", "output"}
                or not all(isinstance(value.get(k), int | float) for k in ("input", "output"))
                or min(value["input"], value["output"]) < 0
            ):
                raise PriceFileError(
                    f"{path}: price for {pattern!r} must be {{input: N, output: N}} with "
                    "non-negative dollars per million tokens"
                )
            user.append((str(pattern), float(value["input"]), float(value["output"])))
    builtin = [(k, v[0], v[1]) for k, v in BUILTIN.items()]
    return PriceTable(tuple(user + builtin))
