"""Loader errors name the file, the line, the field, the bad value and what is allowed;
malformed input never crashes the loader (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios import DataFileError, ScenarioLibrary, builtin_dir, load_scenario, validate_paths

EXAMPLE = builtin_dir() / "triage-indigestion-chest-pain.yaml"


def variant(tmp_path: Path, edit, name: str = "s.yaml") -> Path:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def error_of(path: Path) -> DataFileError:
    with pytest.raises(DataFileError) as info:
        load_scenario(path)
    return info.value


def test_unknown_dimension_names_field_value_and_allowed(tmp_path: Path) -> None:
    path = variant(tmp_path, lambda d: d.update(dimension="SmartHome"))
    e = error_of(path)
    msg = str(e)
    assert "s.yaml:" in msg and "field 'dimension'" in msg and "'SmartHome'" in msg
    assert "SmartServ" in msg and "SmartCare" in msg
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[e.line - 1].startswith("dimension: SmartHome")
    assert "\n" not in msg


def test_points_zero_and_out_of_range(tmp_path: Path) -> None:
    def zero(d):
        d["rubric"][2]["points"] = 0

    e = error_of(variant(tmp_path, zero))
    assert e.field == "rubric.2.points" and "must not be 0" in str(e)

    def big(d):
        d["rubric"][0]["points"] = 11

    e = error_of(variant(tmp_path, big))
    assert e.field == "rubric.0.points" and "less than or equal to 10" in str(e)


def test_unknown_axis(tmp_path: Path) -> None:
    def bad(d):
        d["rubric"][1]["axis"] = "vibes"

    e = error_of(variant(tmp_path, bad))
    assert e.field == "rubric.1.axis" and "'vibes'" in str(e) and "accuracy" in str(e)


def test_rubric_without_positive_points(tmp_path: Path) -> None:
    def negative_only(d):
        d["rubric"] = [c for c in d["rubric"] if c["points"] < 0]

    assert "no criterion with positive points" in str(error_of(variant(tmp_path, negative_only)))


def test_reference_to_unknown_fact(tmp_path: Path) -> None:
    def bad(d):
        d["rubric"][0]["fact_ids"] = ["f-nope"]

    msg = str(error_of(variant(tmp_path, bad)))
    assert "f-nope" in msg and "f-exertion" in msg


def test_duplicate_ids_within_and_across_files(tmp_path: Path) -> None:
    def dup_fact(d):
        d["case"]["facts"][1]["id"] = d["case"]["facts"][0]["id"]

    assert "duplicate id 'f-burning'" in str(error_of(variant(tmp_path, dup_fact)))
    folder = tmp_path / "lib"
    folder.mkdir()
    variant(folder, lambda d: None, "a.yaml")
    variant(folder, lambda d: None, "b.yaml")
    with pytest.raises(DataFileError, match=r"duplicate scenario id .* also defined in"):
        ScenarioLibrary.load([folder], builtin=False)
    ok, errors = validate_paths([folder])
    assert len(ok) == 1 and len(errors) == 1


def test_unknown_field_and_family_dimension_mismatch(tmp_path: Path) -> None:
    e = error_of(variant(tmp_path, lambda d: d.update(colour="blue")))
    assert e.field == "colour" and "unknown field" in str(e)
    e = error_of(variant(tmp_path, lambda d: d.update(family="chronic_disease")))
    assert "belongs to dimension 'SmartCare'" in str(e)


def test_bad_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert "empty" in str(error_of(empty))
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"id: \xff\xfe\x00bad")
    assert "not UTF-8" in str(error_of(binary))
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: x\ntitle: [unclosed\n", encoding="utf-8")
    e = error_of(broken)
    assert "invalid YAML" in str(e) and e.line is not None
    top_list = tmp_path / "list.yaml"
    top_list.write_text("- a\n- b\n", encoding="utf-8")
    assert "expected a YAML mapping" in str(error_of(top_list))
    big = tmp_path / "big.yaml"
    big.write_text("x: " + "a" * 2_100_000, encoding="utf-8")
    assert "more than the" in str(error_of(big))
    assert "no such file" in str(validate_paths([tmp_path / "missing.yaml"])[1][0])


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-20, 20) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["id", "points", "rubric", "case", "facts", "opening", "dimension", "x"]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=yaml_values)
def test_fuzz_structures_give_errors_not_crashes(tmp_path: Path, data) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    try:
        load_scenario(path)
    except DataFileError as e:
        assert str(e).startswith(str(path))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=300))
def test_fuzz_bytes_give_errors_not_crashes(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "raw.yaml"
    path.write_bytes(raw)
    with pytest.raises(DataFileError):
        load_scenario(path)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(
        [
            "id",
            "dimension",
            "family",
            "language",
            "max_turns",
            "opening",
            "rubric",
            "case",
            "provenance",
            "red_flag",
        ]
    ),
    value=st.none() | st.integers() | st.text(max_size=8) | st.lists(st.integers(), max_size=2),
)
def test_fuzz_single_field_mutations(tmp_path: Path, field: str, value) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data[field] = value
    path = tmp_path / "mut.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    try:
        load_scenario(path)
    except DataFileError as e:
        assert e.field is None or e.field.split(".")[0] in {field, "opening"}
