"""Names of the languages scenarios are written in: the one table every prompt takes them from."""

from __future__ import annotations

# English names by language code (the part before any '-': 'zh-CN' is 'zh').
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "zh": "Chinese",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
}

# What to tell someone who must write the language, where its name leaves the script open.
SCRIPT_NAMES: dict[str, str] = {
    "zh": "Simplified Chinese (简体中文)",
}


def language_name(code: str, *, with_script: bool = False) -> str:
    """The English name of a language code ('zh-CN' -> 'Chinese'; with the script,
    'Simplified Chinese (简体中文)'); the code itself when the table lacks it."""
    base = code.split("-")[0]
    if with_script and base in SCRIPT_NAMES:
        return SCRIPT_NAMES[base]
    return LANGUAGE_NAMES.get(base, code)
