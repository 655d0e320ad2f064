"""Scenarios: schema, loader and validator, the built-in library, and importers."""

from scenarios._loader import ScenarioLibrary, builtin_dir, load_scenario, validate_paths
from scenarios._schema import (
    FAMILY_DIMENSION,
    HEALTHBENCH_AXIS_TAGS,
    SCENARIO_SCHEMA_VERSION,
    Axis,
    Criterion,
    Demographics,
    Dimension,
    Fact,
    OpeningTurn,
    PatientCase,
    Provenance,
    Scenario,
    TaskFamily,
    slug,
)
from scenarios.yamlio import DataFileError

__all__ = [
    "FAMILY_DIMENSION",
    "HEALTHBENCH_AXIS_TAGS",
    "SCENARIO_SCHEMA_VERSION",
    "Axis",
    "Criterion",
    "DataFileError",
    "Demographics",
    "Dimension",
    "Fact",
    "OpeningTurn",
    "PatientCase",
    "Provenance",
    "Scenario",
    "ScenarioLibrary",
    "TaskFamily",
    "builtin_dir",
    "load_scenario",
    "slug",
    "validate_paths",
]
