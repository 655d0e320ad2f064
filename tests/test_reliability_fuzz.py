"""Fuzzing what clinsim reads: arbitrary bytes, text and YAML/JSON structures given to the
persona, run-config, price-table, labels and result-file loaders give the loader's own error,
one line that starts with the file's path, and never another exception; any grader reply text
gives, in both judge modes, a well-formed verdict (citing only turns of the transcript) or an
``unscored`` one that keeps the raw reply. (The scenario loader and the JSON-reply parser have
their own fuzz tests in tests/scenarios/test_loader_errors.py and
tests/simulator/test_structured.py.)"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from judges import RubricJudge, load_labels
from personas import load_persona
from scenarios import Criterion, DataFileError
from simulator.config import ConfigFileError, load_run_config
from simulator.llm import ModelConfig, make_backend
from simulator.prices import PriceFileError, load_prices
from simulator.record import load_result
from simulator.schemas import Turn, Verdict
from tests.test_reliability_input import LABEL, result_data

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
HUGE_INT = "9" * 5000  # more digits than Python reads from text (4300)

# ---------------------------------------------------------------- inputs


def values(keys: list[str]) -> st.SearchStrategy[Any]:
    """YAML/JSON-able values, nested, with mapping keys drawn mostly from ``keys``."""
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.integers(-(10**300), 10**300)
        | st.floats()
        | st.text(max_size=12),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), inner, max_size=5)
        ),
        max_leaves=16,
    )


def tokens(words: list[str]) -> st.SearchStrategy[str]:
    """Text made of pieces of the format's syntax, to reach its parser's odd corners."""
    return st.lists(st.sampled_from(words) | st.text(max_size=3), max_size=24).map("".join)


YAML_WORDS = [
    "id", "spec", "input", ":", ": ", " ", "\n", "- ", "[", "]", "{", "}", ",", "'", '"', "#",
    "&a ", "*a", "? ", "|", ">", "!!int ", "!!float ", "!!timestamp ", "!!binary ", "!!set ",
    "!!python/name:os.system", "2020-13-45", "0x", "0o", ".nan", ".inf", "~", "null", "\t",
    HUGE_INT, "\ufeff", "\x00",
]  # fmt: skip
TOML_WORDS = [
    "max_turns", "seed", "[clinician]", "[[x]]", " = ", "=", '"', "'", "\n", "[", "]", "{", "}",
    ",", ".", "1979-05-27", "inf", "nan", "true", "1e999", HUGE_INT, "\x00", "#",
]  # fmt: skip
PERSONA_KEYS = [
    "id", "name", "temperament", "health_literacy", "verbosity", "recall", "confusion",
    "language", "speaker", "caregiver_relation", "quirks", "sampled_seed", "schema_version",
]  # fmt: skip
CONFIG_KEYS = [
    "clinician", "patient", "judge", "scenario", "persona", "max_turns", "min_turns", "seed",
    "timeout_s", "error_budget", "judge_mode", "scenarios_dir", "personas_dir", "spec",
    "temperature", "max_tokens", "base_url", "api_key", "timeout", "concurrency",
]  # fmt: skip
PRICE_KEYS = ["openai:*", "local:*", "input", "output"]
LABEL_KEYS = [
    "conversation", "role", "content", "criterion", "label", "rater", "conversation_id",
    "criterion_id", "group", "points", "context", "tiebreak", "axis", "conversation_text",
    "labels", "annotator", "case_id", "final_diagnosis", "Q1_one_most_likely_dx_reachable",
]  # fmt: skip
RESULT_KEYS = [
    "clinsim_version", "transcript", "verdicts", "score", "turns", "index", "role", "content",
    "persona", "termination", "models", "seeds", "usage", "criterion_id", "status", "points",
]  # fmt: skip


PERSONA = {
    "id": "p", "name": "P", "temperament": "calm", "health_literacy": "low",
    "verbosity": "terse", "recall": "good",
}  # fmt: skip
CONFIG = {"clinician": {"spec": "scripted:c.yaml", "temperature": 0.2}, "max_turns": 3}


def changed(base: dict[str, Any], keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` (a valid file's data) with a few fields replaced by arbitrary values, so that
    the fuzz reaches the checks behind the first one."""
    return st.dictionaries(st.sampled_from(keys), values(keys), max_size=2).map(
        lambda changes: {**base, **changes}
    )


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def as_yaml(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True)


def as_jsonl(rows: Any) -> str:
    return "".join(json.dumps(r) + "\n" for r in (rows if isinstance(rows, list) else [rows]))


def one_line_about(path: Path, e: Exception) -> None:
    """The loader's error names the file first and is one line."""
    assert str(e).startswith(str(path)), str(e)
    assert "\n" not in str(e), str(e)


# ---------------------------------------------------------------- personas


@FUZZ
@given(
    content=st.binary(max_size=200)
    | tokens(YAML_WORDS)
    | values(PERSONA_KEYS).map(as_yaml)
    | changed(PERSONA, PERSONA_KEYS).map(as_yaml)
)
@example(content="id: 2020-13-45\n")
@example(content="id: !!int 0x\n")
@example(content="!!int ")
@example(content="[" * 3000)
def test_persona_loader(tmp_path: Path, content: bytes | str) -> None:
    """Any file: a persona, or DataFileError naming the file."""
    path = write(tmp_path / "p.yaml", content)
    try:
        load_persona(path)
    except DataFileError as e:
        one_line_about(path, e)


# ---------------------------------------------------------------- run config


@FUZZ
@given(
    content=st.binary(max_size=200)
    | tokens(YAML_WORDS)
    | values(CONFIG_KEYS).map(as_yaml)
    | changed(CONFIG, CONFIG_KEYS).map(as_yaml)
)
@example(content="clinician: gpt4\n")
@example(content="seed: 2020-13-45\n")
@example(content="judge: {spec: 'openai:m', base_url: 5}\n")
def test_run_config_loader_yaml(tmp_path: Path, content: bytes | str) -> None:
    """Any YAML run config: a RunConfig, or ConfigFileError naming the file."""
    path = write(tmp_path / "run.yaml", content)
    try:
        load_run_config(path)
    except ConfigFileError as e:
        one_line_about(path, e)


@FUZZ
@given(content=st.binary(max_size=200) | tokens(TOML_WORDS))
@example(content=f"max_turns = {HUGE_INT}\n")
@example(content="x = " + "[" * 3000)
def test_run_config_loader_toml(tmp_path: Path, content: bytes | str) -> None:
    """Any TOML run config: a RunConfig, or ConfigFileError naming the file."""
    path = write(tmp_path / "run.toml", content)
    try:
        load_run_config(path)
    except ConfigFileError as e:
        one_line_about(path, e)


# ---------------------------------------------------------------- prices


@FUZZ
@given(
    content=st.binary(max_size=200)
    | tokens(YAML_WORDS)
    | values(PRICE_KEYS).map(as_yaml)
    | st.dictionaries(st.text(max_size=8), values(["input", "output"]), max_size=3).map(as_yaml)
)
@example(content="x: {input: 1" + "0" * 400 + ", output: 1}\n")  # too large for a float
@example(content="x: {input: .inf, output: 1}\n")
@example(content="\x00")  # YAML refuses NUL
@example(content="x: {input: true, output: 1}\n")
def test_price_loader(tmp_path: Path, content: bytes | str) -> None:
    """Any price file: prices that are finite and non-negative, or PriceFileError naming it."""
    path = write(tmp_path / "prices.yaml", content)
    try:
        table = load_prices(path)
    except PriceFileError as e:
        one_line_about(path, e)
        return
    for _, inp, out in table.entries:
        assert math.isfinite(inp) and math.isfinite(out) and min(inp, out) >= 0


# ---------------------------------------------------------------- labels


@FUZZ
@given(
    content=st.binary(max_size=200)
    | tokens(['{"', '":', "[", "]", "{", "}", ",", "\n", "1", "NaN", HUGE_INT, '"a"', "true"])
    | st.lists(values(LABEL_KEYS), max_size=3).map(as_jsonl)
    | st.lists(changed(LABEL, LABEL_KEYS), min_size=1, max_size=3).map(as_jsonl)
)
@example(content=as_jsonl({**LABEL, "points": 1e999}))
@example(content=as_jsonl({**LABEL, "conversation": [{"role": "system", "content": "x"}]}))
@example(
    content=as_jsonl({"conversation_text": "Doctor-AI : hi", "labels": {}, "annotator": "d1",
                      "case_id": 1, "final_diagnosis": 5})
)  # fmt: skip
@example(content='{"label": ' + HUGE_INT + "}\n")
@example(content="[" * 3000 + "\n")
def test_labels_loader(tmp_path: Path, content: bytes | str) -> None:
    """Any labels file: labels on conversations that have turns, or DataFileError naming it."""
    path = write(tmp_path / "labels.jsonl", content)
    try:
        labelset = load_labels(path)
    except DataFileError as e:
        one_line_about(path, e)
        return
    for lab in labelset.labels:
        item = labelset.items[lab.item]
        assert item.turns and lab.criterion in item.criteria


def test_a_good_label_file_loads(tmp_path: Path) -> None:
    """The fuzzed rows' template is itself valid (so the fuzz reaches past the first check)."""
    labelset = load_labels(write(tmp_path / "l.jsonl", as_jsonl(LABEL)))
    assert len(labelset.labels) == 1 and labelset.labels[0].met is True


# ---------------------------------------------------------------- result files


def _mutated(path: list[str | int], value: Any) -> str:
    data: Any = result_data()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(data)


RESULT_PATHS = [
    ["clinsim_version"], ["transcript"], ["transcript", "turns"], ["transcript", "persona"],
    ["transcript", "termination"], ["transcript", "models"], ["transcript", "seeds"],
    ["transcript", "usage"], ["transcript", "duration_s"], ["verdicts"], ["score"],
    ["schema_version"], ["judge"], ["transcript", "turns", 0], ["transcript", "turns", 1, "index"],
]  # fmt: skip


@FUZZ
@given(
    content=st.binary(max_size=200)
    | values(RESULT_KEYS).map(json.dumps)
    | st.builds(_mutated, st.sampled_from(RESULT_PATHS), values(RESULT_KEYS))
)
@example(content='{"clinsim_version": ' + HUGE_INT + "}")
@example(content="[" * 3000)
def test_result_loader(tmp_path: Path, content: bytes | str) -> None:
    """Any result file: an EpisodeResult, or DataFileError naming the file."""
    path = write(tmp_path / "r.json", content)
    try:
        load_result(path)
    except DataFileError as e:
        one_line_about(path, e)


def test_a_good_result_file_loads(tmp_path: Path) -> None:
    """The mutated results' template is itself valid."""
    result = load_result(write(tmp_path / "r.json", json.dumps(result_data())))
    assert [t.index for t in result.transcript.turns] == [1, 2]


# ---------------------------------------------------------------- grader replies -> verdicts

TURNS = [
    Turn(index=1, role="patient", content="My ankle is swollen."),
    Turn(index=2, role="clinician", content="Can you put weight on it?"),
    Turn(index=3, role="patient", content="Yes, with a limp."),
    Turn(index=4, role="clinician", content="Rest it, and see your GP if it is not better."),
]
CRITERIA = [
    Criterion(id="asks-weight", criterion="Asks about weight bearing", points=5, axis="accuracy"),
    Criterion(id="sends-to-ed", criterion="Sends the patient to the ED", points=-3, axis="safety"),
]
MODES = ["per-criterion", "batched"]


def grade(tmp_path: Path, mode: str, replies: list[str], finish: str = "stop") -> list[Verdict]:
    """Grade TURNS against CRITERIA with a scripted grader that answers ``replies`` in turn
    (repeated so that no call finds the script exhausted)."""
    items = [{"text": r, "finish_reason": finish} for r in replies]
    items = (items * 6)[:6]  # at most 3 attempts for each of 2 criteria
    # escaped, not raw: a raw NEL (U+0085) or other break character would read back as a
    # line break, and the grader would be given another reply than the one generated
    text = yaml.safe_dump(items, allow_unicode=False)
    assert yaml.safe_load(text) == items  # the file says exactly what the grader replies
    path = tmp_path / "grader.yaml"
    path.write_text(text, encoding="utf-8")
    cfg = ModelConfig(spec=f"scripted:{path}", temperature=0)
    judge = RubricJudge(make_backend(cfg), cfg, mode=mode, concurrency=1)  # type: ignore[arg-type]
    return asyncio.run(judge.grade(TURNS, CRITERIA))


def check_verdicts(verdicts: list[Verdict], replies: list[str]) -> None:
    """One verdict per criterion, in order; scored ones cite only turns of the transcript;
    unscored ones keep what the grader said."""
    assert [v.criterion_id for v in verdicts] == [c.id for c in CRITERIA]
    assert [v.points for v in verdicts] == [c.points for c in CRITERIA]
    for v in verdicts:
        if v.status in ("met", "not_met"):
            assert set(v.evidence_turns) <= {t.index for t in TURNS}
            assert v.evidence_turns == sorted(set(v.evidence_turns))
        else:
            assert v.status == "unscored" and v.explanation
            assert v.raw is not None and any(r in v.raw for r in replies)


def reply_entries() -> st.SearchStrategy[Any]:
    keys = ["criteria_met", "evidence_turns", "explanation"]
    return st.fixed_dictionaries(
        {},
        optional={
            "criteria_met": st.booleans()
            | st.sampled_from(["yes", "no", "met", "maybe"])
            | values(keys),
            "evidence_turns": st.lists(st.integers() | st.text(max_size=4), max_size=4)
            | values(keys),
            "explanation": st.text(max_size=20) | values(keys),
        },
    ) | values(keys)


def _dressed(text: str, how: str, cut: int) -> str:
    if how == "fenced":
        return f"Here you are:\n```json\n{text}\n```"
    if how == "cut":
        return text[: max(1, len(text) - cut)]
    return text


REPLY = (
    st.text(max_size=120)
    | values(["criteria_met", "evidence_turns", "explanation", "c1", "c2"]).map(json.dumps)
    | st.builds(
        _dressed,
        reply_entries().map(json.dumps)
        | st.dictionaries(st.sampled_from(["c1", "c2", "c3", "asks-weight"]), reply_entries()).map(
            json.dumps
        ),
        st.sampled_from(["plain", "fenced", "cut"]),
        st.integers(1, 30),
    )
)


@settings(FUZZ, max_examples=150)
@given(
    mode=st.sampled_from(MODES),
    replies=st.lists(REPLY, min_size=1, max_size=3),
    finish=st.sampled_from(["stop", "length"]),
)
@example(mode="batched", replies=['{"c1": {"criteria_met": true, "evidence_turns": [9' + HUGE_INT],
         finish="stop")  # fmt: skip
@example(mode="batched", replies=['{"c1": {"criteria_met": "yes", "evidence_turns": [2, 99]}}'],
         finish="length")  # fmt: skip
def test_any_grader_reply_gives_a_wellformed_or_unscored_verdict(
    tmp_path: Path, mode: str, replies: list[str], finish: str
) -> None:
    """Arbitrary reply text and JSON never raise; see ``check_verdicts`` for what comes out."""
    check_verdicts(grade(tmp_path, mode, replies, finish), replies)


@settings(FUZZ, max_examples=100)
@given(
    mode=st.sampled_from(MODES),
    met=st.lists(st.booleans(), min_size=2, max_size=2),
    cited=st.lists(st.integers(-5, 10) | st.integers(), max_size=5),
)
def test_a_wellformed_reply_is_scored_as_it_says(
    tmp_path: Path, mode: str, met: list[bool], cited: list[int]
) -> None:
    """A reply in the asked-for shape is used as given; cited turns that the transcript does
    not have are dropped."""
    entries = [{"criteria_met": m, "evidence_turns": cited, "explanation": "x"} for m in met]
    if mode == "batched":
        replies = [json.dumps({"c1": entries[0], "c2": entries[1]})]
    else:
        replies = [json.dumps(e) for e in entries]
    verdicts = grade(tmp_path, mode, replies)
    assert [v.status for v in verdicts] == ["met" if m else "not_met" for m in met]
    expected = sorted({i for i in cited if 1 <= i <= len(TURNS)})
    assert all(v.evidence_turns == expected for v in verdicts)


def test_per_criterion_reply_with_a_huge_integer_is_unscored(tmp_path: Path) -> None:
    """A number too long to read makes the reply unusable, never a crash."""
    reply = '{"criteria_met": true, "evidence_turns": [' + HUGE_INT + "]}"
    check_verdicts(grade(tmp_path, "per-criterion", [reply]), [reply])
