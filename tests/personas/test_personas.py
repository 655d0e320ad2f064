"""Personas: the library covers every axis value; sampling is seeded; style reaches the prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from personas import (
    Confusion,
    Level,
    PersonaLibrary,
    Recall,
    Speaker,
    Temperament,
    Verbosity,
    render_style,
    sample_persona,
)
from scenarios import DataFileError, ScenarioLibrary
from simulator.patient import patient_system_prompt

LIB = PersonaLibrary.load()


def test_at_least_twelve_personas_covering_every_axis_value() -> None:
    people = list(LIB)
    assert len(people) >= 12
    for attr, enum in [
        ("temperament", Temperament),
        ("health_literacy", Level),
        ("verbosity", Verbosity),
        ("recall", Recall),
        ("confusion", Confusion),
        ("speaker", Speaker),
    ]:
        assert {getattr(p, attr) for p in people} == set(enum), attr
    assert {"zh", "auto"} <= {p.language for p in people}


def test_sampling_is_reproducible_and_varied() -> None:
    assert sample_persona(7) == sample_persona(7)
    assert LIB.get("sampled:7") == sample_persona(7)
    assert sample_persona(7).sampled_seed == 7
    assert (
        len(
            {
                sample_persona(i).model_dump_json(exclude={"id", "name", "sampled_seed"})
                for i in range(40)
            }
        )
        > 10
    )
    with pytest.raises(KeyError, match="sampled:SEED"):
        LIB.get("sampled:x")


@pytest.mark.parametrize("persona", list(LIB), ids=lambda p: p.id)
def test_style_is_rendered_into_the_patient_prompt(persona) -> None:
    scenarios = ScenarioLibrary.load()
    for sc in (
        scenarios.get("triage-indigestion-chest-pain"),
        next(s for s in scenarios if s.language == "zh"),
    ):
        prompt = patient_system_prompt(sc, persona)
        for line in render_style(persona, sc.language):
            assert line in prompt
        if persona.speaker is Speaker.CAREGIVER:
            assert "on the patient's behalf" in prompt
        assert sc.case.diagnosis is None or sc.case.diagnosis not in prompt
        assert all(c.criterion not in prompt for c in sc.rubric)
        assert all(f.text in prompt for f in sc.case.facts)


def test_user_persona_folder_and_errors(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "id: mine\nname: Mine\ntemperament: calm\nhealth_literacy: low\nverbosity: terse\n"
        "recall: good\n",
        encoding="utf-8",
    )
    lib = PersonaLibrary.load([tmp_path])
    assert lib.get("mine").temperament is Temperament.CALM
    (tmp_path / "bad.yaml").write_text(
        "id: bad\nname: Bad\ntemperament: sleepy\nhealth_literacy: low\nverbosity: terse\n"
        "recall: good\n",
        encoding="utf-8",
    )
    with pytest.raises(DataFileError, match=r"bad.yaml:3: field 'temperament'.*'sleepy'"):
        PersonaLibrary.load([tmp_path])
