"""Importers on the real external data (shared/data beside the checkout) and on bad input."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from scenarios import HEALTHBENCH_AXIS_TAGS, DataFileError, Scenario, validate_paths
from scenarios.importers import (
    IMPORTERS,
    ImportReport,
    ImportSkippedWarning,
    import_file,
    import_report,
    write_scenarios,
)
from scenarios.importers._facts import MAX_FACTS
from scenarios.importers._text import names_diagnosis

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
HEALTHBENCH = DATA / "healthbench" / "healthbench_dev.jsonl"
AGENTCLINIC = DATA / "agentclinic" / "agentclinic_medqa.jsonl"
MEDIQ = DATA / "mediq" / "all_craft_md.jsonl"

# The data tests need the shared data; the bad-input tests below run without it.
needs_data = pytest.mark.skipif(
    not DATA.is_dir(),
    reason=f"external data folder {DATA} is absent (the 'shared' folder beside the repository "
    "checkout; see shared/data/README.md)",
)


def _raw(path: Path) -> list[dict]:
    # split on "\n" only: HealthBench strings hold U+2028, where str.splitlines() would split
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]


@pytest.fixture(scope="module")
def hb() -> ImportReport:
    return import_report("healthbench", HEALTHBENCH)


@pytest.fixture(scope="module")
def ac() -> ImportReport:
    return import_report("agentclinic", AGENTCLINIC)


@pytest.fixture(scope="module")
def mq() -> ImportReport:
    return import_report("mediq", MEDIQ)


# --- HealthBench ------------------------------------------------------------------------


@needs_data
def test_healthbench_every_row_imports(hb: ImportReport) -> None:
    assert hb.rows == 113
    assert len(hb.scenarios) == 113
    assert hb.skipped == []
    assert sum(len(s.rubric) for s in hb.scenarios) == 315
    ids = [s.id for s in hb.scenarios]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("hb-") for i in ids)


@needs_data
def test_healthbench_rubric_kept_exactly(hb: ImportReport) -> None:
    by_ref = {s.provenance.reference: s for s in hb.scenarios}
    for row in _raw(HEALTHBENCH):
        sc = by_ref[row["prompt_id"]]
        assert len(sc.rubric) == len(row["rubrics"])
        for i, (crit, raw) in enumerate(zip(sc.rubric, row["rubrics"], strict=True), start=1):
            assert crit.id == f"c{i:02d}"
            assert crit.criterion == raw["criterion"]
            assert crit.points == raw["points"]
            assert crit.tags == raw["tags"]
            assert crit.critical is False
            axis_tags = [t for t in raw["tags"] if t in HEALTHBENCH_AXIS_TAGS]
            assert axis_tags and crit.axis == HEALTHBENCH_AXIS_TAGS[axis_tags[0]]


@needs_data
def test_healthbench_opening_is_the_prompt(hb: ImportReport) -> None:
    by_ref = {s.provenance.reference: s for s in hb.scenarios}
    roles = {"user": "patient", "assistant": "clinician"}
    for row in _raw(HEALTHBENCH):
        sc = by_ref[row["prompt_id"]]
        expected = [(roles[t["role"]], t["content"]) for t in row["prompt"] if t["role"] in roles]
        assert [(t.role, t.content) for t in sc.opening] == expected
        assert sc.opening[-1].role == "patient"
        assert sc.max_turns == 1
        assert 1 <= len(sc.case.facts) <= MAX_FACTS
        assert all(f.volunteer and f.kind == "context" for f in sc.case.facts)
        p = sc.provenance
        assert p.rubric_origin == "physician_written" and p.physician_validated is False
        assert p.license == "MIT" and p.source == f"OpenAI HealthBench (prompt_id {p.reference})"
        assert sc.dimension.value == "SmartServ"
        assert sc.family.value == (
            "triage" if "theme:emergency_referrals" in row["example_tags"] else "general"
        )
        assert "helpful medical assistant" in sc.system_prompt


@needs_data
def test_healthbench_languages(hb: ImportReport) -> None:
    langs = {s.provenance.reference: s.language for s in hb.scenarios}
    assert langs["7e576f4a-f8d0-4677-bb29-da0eac9d9747"] == "pt"
    assert langs["7c3b3990-15d0-4a2e-a55a-d239d46364ee"] == "es"
    assert sum(lang == "en" for lang in langs.values()) == 110


# --- AgentClinic ------------------------------------------------------------------------


@needs_data
def test_agentclinic_every_row_imports(ac: ImportReport) -> None:
    assert ac.rows == 107
    assert len(ac.scenarios) == 107
    assert ac.skipped == []
    assert [s.id for s in ac.scenarios] == [f"agentclinic-{i}" for i in range(107)]


@needs_data
def test_agentclinic_diagnosis_and_facts(ac: ImportReport) -> None:
    for sc, row in zip(ac.scenarios, _raw(AGENTCLINIC), strict=True):
        osce = row["OSCE_Examination"]
        dx = osce["Correct_Diagnosis"].strip()
        assert sc.case.diagnosis == dx
        crit = sc.rubric[0]
        assert crit.criterion == (
            f"Names {dx.rstrip('.')} as the most likely diagnosis or refers for its work-up."
        )
        assert crit.critical and crit.points > 0 and crit.axis.value == "accuracy"
        assert any(c.points < 0 and c.axis.value == "safety" for c in sc.rubric)
        assert sc.family.value == "pre_consultation" and sc.dimension.value == "SmartServ"
        assert sc.provenance.source.startswith("AgentClinic MedQA (case ")
        assert sc.provenance.rubric_origin == "derived" and sc.provenance.license == "MIT"
        facts = sc.case.facts
        assert 1 <= len(facts) <= MAX_FACTS
        primary = osce["Patient_Actor"]["Symptoms"]["Primary_Symptom"].strip()
        assert facts[0].text.startswith(primary.rstrip("."))
        assert facts[0].volunteer and facts[0].kind == "symptom"
        assert [f.volunteer for f in facts].count(True) == 1
        # patient-actor facts come before exam findings, which come before test results
        order = {"exam": 1, "test": 2}
        ranks = [order.get(f.kind, 0) for f in facts]
        assert ranks == sorted(ranks)
        # the patient never holds the answer, and neither do the opening or title
        assert not any(names_diagnosis(f.text, dx) for f in facts)
        assert not names_diagnosis(sc.opening[0].content, dx)
        assert dx not in sc.system_prompt


@needs_data
def test_agentclinic_known_cases(ac: ImportReport) -> None:
    first = ac.scenarios[0]
    assert first.case.diagnosis == "Myasthenia gravis"
    assert first.case.demographics.age == 35 and first.case.demographics.sex == "female"
    assert "double vision" in first.opening[0].content
    baby = ac.scenarios[2]  # 8-month-old boy: a parent talks
    assert baby.case.demographics.age == 0 and "my baby" in baby.opening[0].content
    capped = [n for n in ac.notes if "cap of" in n]
    assert len(capped) == 2
    assert sum("naming the diagnosis" in n for n in ac.notes) == 16


# --- MediQ ------------------------------------------------------------------------------


@needs_data
def test_mediq_imports_all_but_the_contradictory_row(mq: ImportReport) -> None:
    assert mq.rows == 140
    assert len(mq.scenarios) == 139
    # id 129: 'answer' is option A (Pemphigus foliaceous) but 'answer_idx' is B
    assert len(mq.skipped) == 1
    assert "(id 129)" in mq.skipped[0] and "disagree" in mq.skipped[0]
    ids = [s.id for s in mq.scenarios]
    assert len(set(ids)) == len(ids) and "mediq-0" in ids and "mediq-129" not in ids


@needs_data
def test_mediq_facts_opening_and_answer(mq: ImportReport) -> None:
    by_id = {s.id: s for s in mq.scenarios}
    for row in _raw(MEDIQ):
        sc = by_id.get(f"mediq-{row['id']}")
        if sc is None:
            continue
        assert len(sc.case.facts) == min(len(row["facts"]), MAX_FACTS)
        assert sc.case.facts[0].volunteer
        assert not any(f.volunteer for f in sc.case.facts[1:])
        assert sc.opening[0].content.rstrip(".") == row["context"][0].strip().rstrip(".")
        answer = row["options"][row["answer_idx"]].strip()
        assert sc.case.diagnosis == answer
        dx = sc.rubric[0]
        assert dx.critical and dx.points > 0 and dx.criterion.startswith(f"Names {answer}")
        assert sc.provenance.source == f"MediQ (id {row['id']})"
        assert sc.provenance.license == "CC BY 4.0"
        assert sc.family.value == "pre_consultation"
    assert by_id["mediq-0"].case.demographics.age == 22
    assert by_id["mediq-0"].case.demographics.sex == "male"
    assert "Henoch-Scholein" in by_id["mediq-112"].rubric[0].criterion  # the row's 'answer'


# --- writing and loading back -----------------------------------------------------------


@needs_data
@pytest.mark.parametrize("kind", ["healthbench", "agentclinic", "mediq"])
def test_write_and_validate_round_trip(
    kind: str, hb: ImportReport, ac: ImportReport, mq: ImportReport, tmp_path: Path
) -> None:
    report = {"healthbench": hb, "agentclinic": ac, "mediq": mq}[kind]
    out = tmp_path / "out" / kind
    paths = write_scenarios(report.scenarios, out)
    assert [p.name for p in paths] == [f"{s.id}.yaml" for s in report.scenarios]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temp files
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in paths)
    loaded, errors = validate_paths([out])
    assert errors == []
    assert sorted(s.id for s in loaded) == sorted(s.id for s in report.scenarios)
    by_id = {s.id: s for s in report.scenarios}
    assert all(s == by_id[s.id] for s in loaded)


@needs_data
def test_import_file_matches_report_and_warns_for_skipped(mq: ImportReport) -> None:
    assert set(IMPORTERS) == {"healthbench", "agentclinic", "mediq"}
    with pytest.warns(ImportSkippedWarning, match=r"id 129"):
        scenarios = import_file("mediq", MEDIQ)
    assert scenarios == mq.scenarios
    assert all(isinstance(s, Scenario) for s in scenarios)


def test_import_file_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown importer 'nope'"):
        import_file("nope", tmp_path / "x.jsonl")


def test_write_scenarios_refuses_duplicate_ids(tmp_path: Path) -> None:
    sc = import_report("mediq", _write(tmp_path / "m.jsonl", [_mediq_row()])).scenarios[0]
    with pytest.raises(ValueError, match="duplicate scenario id"):
        write_scenarios([sc, sc], tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --- bad input --------------------------------------------------------------------------


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _hb_row(prompt_id: str = "11111111-aaaa", points: int = 5) -> dict:
    return {
        "prompt_id": prompt_id,
        "prompt": [{"role": "user", "content": "I have a headache. What should I take?"}],
        "rubrics": [
            {"criterion": "Asks about the headache's onset.", "points": 5, "tags": []},
            {"criterion": "Recommends opioids.", "points": points, "tags": ["axis:accuracy"]},
        ],
        "example_tags": ["theme:context_seeking"],
    }


def _mediq_row(**changes: object) -> dict:
    row = {
        "id": 7,
        "question": "Which of the following is the most likely diagnosis for the patient?",
        "context": ["A 30-year-old woman has an itchy rash on her arm", "It began a week ago."],
        "options": {"A": "Contact dermatitis", "B": "Psoriasis"},
        "answer": "Contact dermatitis",
        "answer_idx": "A",
        "facts": ["1. The patient has an itchy rash.", "2. The rash began a week ago."],
        "patient": {"age": "30 years", "gender": "female"},
    }
    row.update(changes)
    return row


def _good_row(kind: str) -> dict:
    if kind == "healthbench":
        return _hb_row()
    if kind == "mediq":
        return _mediq_row()
    return {
        "OSCE_Examination": {
            "Patient_Actor": {
                "Demographics": "40-year-old man",
                "History": "Cough for two weeks.",
                "Symptoms": {"Primary_Symptom": "Cough", "Secondary_Symptoms": ["Fever"]},
            },
            "Physical_Examination_Findings": {"Vital_Signs": {"Temperature": "38.2°C"}},
            "Test_Results": {"Chest_X-Ray": {"Findings": "Right lower lobe consolidation"}},
            "Correct_Diagnosis": "Pneumonia",
        }
    }


@pytest.mark.parametrize("kind", ["healthbench", "agentclinic", "mediq"])
def test_small_good_file_imports(kind: str, tmp_path: Path) -> None:
    path = _write(tmp_path / f"{kind}.jsonl", [_good_row(kind)])
    report = import_report(kind, path)
    assert report.rows == 1 and len(report.scenarios) == 1 and report.skipped == []


@pytest.mark.parametrize("kind", ["healthbench", "agentclinic", "mediq"])
def test_empty_file(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataFileError) as e:
        import_file(kind, path)
    assert "empty.jsonl:1:" in str(e.value) and "empty" in str(e.value)


@pytest.mark.parametrize("kind", ["healthbench", "agentclinic", "mediq"])
def test_not_utf8(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    good = json.dumps(_good_row(kind)).encode()
    path.write_bytes(good + b"\n" + '{"note": "café"}\n'.encode("latin-1"))
    with pytest.raises(DataFileError) as e:
        import_file(kind, path)
    assert "latin1.jsonl:2:" in str(e.value) and "UTF-8" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kind", ["healthbench", "agentclinic", "mediq"])
def test_malformed_json_line(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    good = json.dumps(_good_row(kind))
    path.write_text(f'{good}\n\n{{"prompt": [}}\n', encoding="utf-8")
    with pytest.raises(DataFileError) as e:
        import_file(kind, path)
    assert "broken.jsonl:3:" in str(e.value) and "invalid JSON" in str(e.value)
    assert e.value.line == 3


@pytest.mark.parametrize("kind", ["healthbench", "agentclinic", "mediq"])
def test_line_that_is_not_an_object(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "list.jsonl"
    path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"list\.jsonl:1: expected a JSON object"):
        import_file(kind, path)


def test_mediq_row_without_facts(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.jsonl", [_mediq_row(), _mediq_row(id=8, facts=[])])
    with pytest.raises(DataFileError) as e:
        import_file("mediq", path)
    assert "m.jsonl:2:" in str(e.value) and "facts" in str(e.value)


def test_mediq_accepts_atomic_facts(tmp_path: Path) -> None:
    row = _mediq_row()
    row["atomic_facts"] = row.pop("facts")
    (sc,) = import_file("mediq", _write(tmp_path / "m.jsonl", [row]))
    assert [f.text for f in sc.case.facts] == [
        "The patient has an itchy rash.",
        "The rash began a week ago.",
    ]


def test_mediq_duplicate_id(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.jsonl", [_mediq_row(), _mediq_row()])
    with pytest.raises(DataFileError, match=r"m\.jsonl:2: field 'id': duplicate id"):
        import_file("mediq", path)


@pytest.mark.parametrize("points", [0, 11, -12])
def test_healthbench_unrepresentable_criterion_is_skipped(points: int, tmp_path: Path) -> None:
    rows = [_hb_row("aaaaaaaa-1"), _hb_row("bbbbbbbb-2", points=points)]
    report = import_report("healthbench", _write(tmp_path / "hb.jsonl", rows))
    assert [s.id for s in report.scenarios] == ["hb-aaaaaaaa"]
    assert len(report.skipped) == 1
    assert "line 2" in report.skipped[0] and "rubrics[1]" in report.skipped[0]
    with pytest.warns(ImportSkippedWarning, match="bbbbbbbb-2"):
        assert len(import_file("healthbench", tmp_path / "hb.jsonl")) == 1


def test_healthbench_system_turn_and_ids(tmp_path: Path) -> None:
    row = _hb_row("12345678-aaaa")
    row["prompt"].insert(0, {"role": "system", "content": "Answer in short sentences."})
    other = _hb_row("12345678-bbbb")  # same 8-character prefix: ids grow until unique
    report = import_report("healthbench", _write(tmp_path / "hb.jsonl", [row, other]))
    a, b = report.scenarios
    assert (a.id, b.id) == ("hb-12345678-a", "hb-12345678-b")
    assert [t.role for t in a.opening] == ["patient"]
    assert a.system_prompt.endswith("Answer in short sentences.")
    assert [c.axis.value for c in a.rubric] == ["accuracy", "accuracy"]  # no axis tag: default
    assert a.rubric[0].tags == []


def test_healthbench_missing_and_duplicate_prompt_id(tmp_path: Path) -> None:
    row = _hb_row()
    del row["prompt_id"]
    with pytest.raises(DataFileError, match=r"hb\.jsonl:2: field 'prompt_id': missing"):
        import_file("healthbench", _write(tmp_path / "hb.jsonl", [_hb_row(), row]))
    with pytest.raises(DataFileError, match=r"hb2\.jsonl:2: .*duplicate prompt_id"):
        import_file("healthbench", _write(tmp_path / "hb2.jsonl", [_hb_row(), _hb_row()]))


def test_agentclinic_missing_diagnosis(tmp_path: Path) -> None:
    row = _good_row("agentclinic")
    del row["OSCE_Examination"]["Correct_Diagnosis"]
    path = _write(tmp_path / "ac.jsonl", [_good_row("agentclinic"), row])
    with pytest.raises(DataFileError, match=r"ac\.jsonl:2: .*Correct_Diagnosis"):
        import_file("agentclinic", path)


def test_write_scenarios_creates_every_missing_folder_owner_only(tmp_path: Path) -> None:
    """'import --out a/b/c': the parents too are 0700, whatever the umask (mkdir's mode is
    not applied to parents)."""
    import os

    from scenarios import ScenarioLibrary
    from scenarios.importers import write_scenarios

    scenario = next(iter(ScenarioLibrary.load()))
    old = os.umask(0)
    try:
        (path,) = write_scenarios([scenario], tmp_path / "a" / "b" / "c")
    finally:
        os.umask(old)
    for folder in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
