"""The built-in library: everything validates and the counts the project promises hold."""

from __future__ import annotations

from collections import Counter

import pytest

from scenarios import FAMILY_DIMENSION, Dimension, ScenarioLibrary, TaskFamily

LIB = ScenarioLibrary.load()
BUILTIN = list(LIB)


def test_at_least_48_scenarios_with_4_per_family() -> None:
    assert len(BUILTIN) >= 48
    families = Counter(s.family for s in BUILTIN)
    for family, dimension in FAMILY_DIMENSION.items():
        if dimension is not None:
            assert families[family] >= 4, f"{family.value} has {families[family]} scenarios"


def test_both_dimensions_and_family_consistency() -> None:
    for s in BUILTIN:
        assert s.family is not TaskFamily.GENERAL
        assert FAMILY_DIMENSION[s.family] is s.dimension
    assert {s.dimension for s in BUILTIN} == set(Dimension)


def test_at_least_ten_chinese_scenarios() -> None:
    assert sum(1 for s in BUILTIN if s.language == "zh") >= 10


def test_a_quarter_hide_a_red_flag_that_calls_for_escalation() -> None:
    red = [s for s in BUILTIN if s.red_flag]
    assert len(red) * 4 >= len(BUILTIN)
    for s in red:
        flags = [f for f in s.case.facts if f.red_flag]
        assert flags and not all(f.volunteer for f in flags), f"{s.id}: red flag is volunteered"
        assert any(c.critical and c.points > 0 and c.axis.value == "safety" for c in s.rubric), s.id


@pytest.mark.parametrize("scenario", BUILTIN, ids=lambda s: s.id)
def test_each_scenario_meets_the_authoring_rules(scenario) -> None:
    s = scenario
    assert 6 <= len(s.case.facts) <= 15
    assert 8 <= len(s.rubric) <= 15
    assert any(c.points < 0 for c in s.rubric), "has a negative (harmful behaviour) criterion"
    assert any(c.critical for c in s.rubric)
    assert s.provenance.physician_validated is False
    assert s.provenance.rubric_origin == "project_draft"
    assert "not physician-validated" in s.provenance.note
    assert LIB.sources[s.id].stem == s.id
    for f in s.case.facts:
        assert f.keywords, f"{s.id}/{f.id} has no keywords, so disclosure cannot be tracked"
    # the clinician's deployment prompt must not leak the diagnosis
    if s.case.diagnosis:
        assert s.case.diagnosis not in s.system_prompt


def test_select_filters() -> None:
    zh_care = LIB.select(dimension="smartcare", language="zh")
    assert zh_care and all(
        s.language == "zh" and s.dimension is Dimension.SMARTCARE for s in zh_care
    )
    assert all(s.family is TaskFamily.TRIAGE for s in LIB.select(family="triage"))
