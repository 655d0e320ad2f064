"""Personas: typed patient behaviour, the built-in library, sampling and style rendering."""

from personas._loader import (
    PersonaLibrary,
    builtin_dir,
    load_persona,
    render_style,
    sample_persona,
)
from personas._schema import (
    PERSONA_SCHEMA_VERSION,
    Confusion,
    Level,
    Persona,
    Recall,
    Speaker,
    Temperament,
    Verbosity,
)

__all__ = [
    "PERSONA_SCHEMA_VERSION",
    "Confusion",
    "Level",
    "Persona",
    "PersonaLibrary",
    "Recall",
    "Speaker",
    "Temperament",
    "Verbosity",
    "builtin_dir",
    "load_persona",
    "render_style",
    "sample_persona",
]
