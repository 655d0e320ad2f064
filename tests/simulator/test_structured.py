"""Tolerant JSON parsing of grader replies, and structured calls that retry then give up."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from judges import GraderReply
from simulator.llm import ModelConfig, complete_structured, make_backend, parse_json_reply
from simulator.llm._local import grammar_safe_schema


def test_parse_variants() -> None:
    assert parse_json_reply('{"a": 1}') == {"a": 1}
    assert parse_json_reply('Sure! ```json\n{"a": 1, "b": [1,2,],}\n``` done') == {
        "a": 1,
        "b": [1, 2],
    }
    assert parse_json_reply('text {"criteria_met": True, "x": None} more') == {
        "criteria_met": True,
        "x": None,
    }
    assert parse_json_reply('{"s": "a } brace"} then {"b": 2}') == {"s": "a } brace"}
    assert parse_json_reply("[1, 2]") is None
    assert parse_json_reply("no json here") is None
    assert parse_json_reply("") is None
    assert parse_json_reply('{"unterminated": ') is None


def test_truncated_replies_are_closed_without_inventing_values() -> None:
    assert parse_json_reply('{"criteria_met": true, "explanation": "The assistant adv') == {
        "criteria_met": True,
        "explanation": "The assistant adv",
    }
    assert parse_json_reply('{"criteria_met": false, "evidence_turns": [1, 2') == {
        "criteria_met": False,
        "evidence_turns": [1, 2],
    }
    assert parse_json_reply('{"criteria_met": false, "expl') == {"criteria_met": False}
    assert parse_json_reply('{"criteria_met": ') is None  # no value is made up
    with pytest.raises(ValidationError):
        GraderReply.model_validate(parse_json_reply('{"explanation": "x", "criteria_met": ') or {})


def test_grader_reply_is_lenient_about_shapes() -> None:
    r = GraderReply.model_validate({"criteria_met": "yes", "evidence_turns": "3"})
    assert r.criteria_met is True and r.evidence_turns == [3]
    r = GraderReply.model_validate({"criteria_met": False, "evidence_turns": ["[2]", "x", 4]})
    assert r.evidence_turns == [2, 4]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_parser_never_raises(text: str) -> None:
    value = parse_json_reply(text)
    assert value is None or isinstance(value, dict)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8), st.integers() | st.text(max_size=8) | st.booleans(), max_size=4
    ),
    st.text(max_size=30),
    st.text(max_size=30),
)
def test_fuzz_embedded_objects_are_found(obj, before: str, after: str) -> None:
    import json

    found = parse_json_reply(before.replace("{", "(") + json.dumps(obj) + after)
    assert found == obj


async def test_structured_retries_then_keeps_raw(script) -> None:
    spec = script("g", ["nothing", "still nothing", '{"criteria_met": true}', "unused"])
    backend = make_backend(ModelConfig(spec=spec))
    res = await complete_structured(
        backend, [{"role": "user", "content": "x"}], GraderReply, attempts=3
    )
    assert res.value is not None and res.value.criteria_met is True
    assert res.raw == ["nothing", "still nothing", '{"criteria_met": true}']
    backend = make_backend(ModelConfig(spec=script("h", ["a", "b"])))
    res = await complete_structured(
        backend, [{"role": "user", "content": "x"}], GraderReply, attempts=2
    )
    assert res.value is None and res.raw == ["a", "b"] and res.error


def test_grammar_safe_schema_drops_only_large_bounds() -> None:
    schema = {
        "type": "object",
        "properties": {
            "e": {"type": "string", "maxLength": 4000, "minLength": 2},
            "l": {"type": "array", "items": {"type": "integer"}, "maxItems": 99},
            "s": {"type": "string", "maxLength": 300},
            "t": {"type": "array", "items": {"enum": [1, 2]}, "maxItems": 2},
        },
    }
    safe = grammar_safe_schema(schema)
    assert safe == {
        "type": "object",
        "properties": {
            "e": {"type": "string"},
            "l": {"type": "array", "items": {"type": "integer"}},
            "s": {"type": "string", "maxLength": 300},
            "t": {"type": "array", "items": {"enum": [1, 2]}, "maxItems": 2},
        },
    }


def test_a_batched_reply_cut_off_keeps_its_complete_entries() -> None:
    cut = '{"c1": {"criteria_met": true, "explanation": "a"}, "c2": {"criteria_met": false, "ex'
    assert parse_json_reply(cut) == {
        "c1": {"criteria_met": True, "explanation": "a"},
        "c2": {"criteria_met": False},
    }
    assert parse_json_reply('{"c1": {"criteria_met": true}, "c2": {"crit') == {
        "c1": {"criteria_met": True},
        "c2": {},
    }
    # prose with a stray brace before a cut-off reply
    assert parse_json_reply('I think {maybe} so: {"criteria_met": false, "expl') == {
        "criteria_met": False
    }
