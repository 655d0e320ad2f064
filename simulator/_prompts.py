"""Render the prompt templates that live in simulator/prompts (jinja2, never strings in code)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2

LANGUAGE_NAMES = {
    "en": "English",
    "zh": "Simplified Chinese (简体中文)",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
}


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("simulator", "prompts"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )


def render(template: str, **values: Any) -> str:
    return _env().get_template(template).render(**values).strip() + "\n"


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code.split("-")[0], code)
