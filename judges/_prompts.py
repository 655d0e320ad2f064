"""The grader prompts: judges/prompts rendered with the simulator's one rendering helper, and
the language name they are given."""

from __future__ import annotations

from typing import Any

from scenarios.languages import LANGUAGE_NAMES
from simulator._prompts import render as _render

# The languages the grader prompt names; it gives any other by its code.
GRADER_NAMED_LANGUAGES = ("en", "zh")


def render(template: str, **values: Any) -> str:
    return _render("judges", template, **values)


def language_name(code: str) -> str:
    """How the grader prompt names a conversation's language: by name for the languages above,
    else by its code."""
    return LANGUAGE_NAMES[code] if code in GRADER_NAMED_LANGUAGES else code
