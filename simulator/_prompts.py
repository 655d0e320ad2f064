"""Render the prompt templates that live in a package's prompts/ folder (jinja2, never strings
in code): simulator/prompts for the patient and clinician, judges/prompts for the grader."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from scenarios.languages import language_name as _language_name


@cache
def _env(package: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "prompts"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )


def render(package: str, template: str, **values: Any) -> str:
    """``<package>/prompts/<template>`` rendered, stripped, with one final newline."""
    return _env(package).get_template(template).render(**values).strip() + "\n"


def language_name(code: str) -> str:
    """The language a simulated speaker is told to use, with its script where the name leaves
    it open ('zh' -> 'Simplified Chinese (简体中文)')."""
    return _language_name(code, with_script=True)
