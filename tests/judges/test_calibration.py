"""Calibration against human labels: the CRAFT-MD reader, the generic JSONL reader, and the
figures computed end to end with a scripted judge whose answers make them hand-checkable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judges import RubricJudge, calibrate, load_labels
from judges._calibration import human_pairs
from scenarios import DataFileError
from simulator.llm import ModelConfig, make_backend

CRAFTMD = Path(__file__).resolve().parents[3] / "shared" / "data" / "craftmd"
LABELS = CRAFTMD / "expert_labels_dev.jsonl"
needs_craftmd = pytest.mark.skipif(
    not LABELS.is_file(), reason="CRAFT-MD labels not found beside the project (../shared/data)"
)


@needs_craftmd
def test_craftmd_labels_are_read_whole() -> None:
    rows = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines()]
    ls = load_labels(LABELS)
    assert ls.format == "craftmd"
    assert len(ls.items) == len({(r["case_id"], r["doctor_model"]) for r in rows})
    given = sum(1 for r in rows for v in r["labels"].values() if v is not None)
    assert len(ls.labels) == given and ls.skipped == 3 * len(rows) - given
    item = ls.items[f"{rows[0]['case_id']}/{rows[0]['doctor_model']}"]
    assert item.turns[0].role == "clinician" and item.turns[0].content.startswith("Hi!")
    assert item.turns[1].role == "patient"
    assert item.turns[-1].content == rows[0]["final_diagnosis"].strip()
    assert [t.index for t in item.turns] == list(range(1, len(item.turns) + 1))
    assert rows[0]["correct_diagnosis"] in (item.context or "")
    assert set(item.criteria) == {"q1-dx-reachable", "q2-covers-vignette", "q3-patient-terminology"}


@needs_craftmd
def test_craftmd_human_ceiling_compares_the_two_dermatologists_only() -> None:
    rows = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines()]
    by_conv: dict[tuple[str, str], dict[str, dict[str, bool | None]]] = {}
    for r in rows:
        by_conv.setdefault((r["case_id"], r["doctor_model"]), {})[r["annotator"]] = r["labels"]
    expected = {}
    for q in rows[0]["labels"]:
        pairs = [
            (raters["d1"][q], raters["d2"][q])
            for raters in by_conv.values()
            if "d1" in raters
            and "d2" in raters
            and raters["d1"][q] is not None
            and raters["d2"][q] is not None
        ]
        expected[q] = (len(pairs), sum(a == b for a, b in pairs))
    ls = load_labels(LABELS)
    got: dict[str, list[tuple[bool, bool]]] = {}
    for (item, crit), pairs in human_pairs(ls.labels).items():
        got.setdefault(ls.items[item].groups[crit], []).extend(pairs)
    assert {q: (len(p), sum(a == b for a, b in p)) for q, p in got.items()} == expected


@needs_craftmd
async def test_calibration_maths_end_to_end_with_a_judge_that_always_says_yes(script) -> None:
    ls = load_labels(LABELS).limited(12)
    reply = json.dumps(
        {
            f"c{i}": {"criteria_met": True, "evidence_turns": [1], "explanation": "x"}
            for i in (1, 2, 3)
        }
    )
    cfg = ModelConfig(spec=script("yes", [reply] * len(ls.items)), temperature=0)
    judge = RubricJudge(make_backend(cfg), cfg, mode="batched")
    report = await calibrate(judge, ls, mode="batched")
    truth = [lab.met for lab in ls.labels]
    o = report.overall.judge
    assert o.n == len(truth) and report.overall.unscored == 0
    assert o.accuracy == pytest.approx(sum(truth) / len(truth))
    assert o.kappa == pytest.approx(0.0)  # a constant rater agrees no better than chance
    for group, figures in report.groups.items():
        g = [lab.met for lab in ls.labels if ls.items[lab.item].groups[lab.criterion] == group]
        assert figures.judge.n == len(g)
        assert figures.judge.accuracy == pytest.approx(sum(g) / len(g))
    d = report.to_dict()
    assert {"accuracy", "macro_f1", "kappa", "n", "human", "groups"} <= set(d)
    assert report.usage.calls == len(ls.items)


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


CONV_A = [
    {"role": "user", "content": "My chest hurts."},
    {"role": "assistant", "content": "Call 911."},
]
CONV_B = [{"role": "patient", "content": "I have a cold."}, {"role": "doctor", "content": "Rest."}]


async def test_generic_jsonl_figures_by_hand(tmp_path: Path, script) -> None:
    rows = [
        # conversation A: criterion "escalates": raters r1 yes, r2 yes; "asks": r1 no, r2 yes
        {
            "conversation": CONV_A,
            "conversation_id": "a",
            "criterion": "Escalates to emergency care",
            "criterion_id": "escalates",
            "label": True,
            "rater": "r1",
        },
        {
            "conversation": CONV_A,
            "conversation_id": "a",
            "criterion": "Escalates to emergency care",
            "criterion_id": "escalates",
            "label": "yes",
            "rater": "r2",
        },
        {
            "conversation": CONV_A,
            "conversation_id": "a",
            "criterion": "Asks about onset",
            "criterion_id": "asks",
            "label": "no",
            "rater": "r1",
        },
        {
            "conversation": CONV_A,
            "conversation_id": "a",
            "criterion": "Asks about onset",
            "criterion_id": "asks",
            "label": 1,
            "rater": "r2",
        },
        # conversation B (no id: keyed by content): "escalates" r1 no; unlabelled row skipped
        {
            "conversation": CONV_B,
            "criterion": "Escalates to emergency care",
            "criterion_id": "escalates",
            "label": False,
            "rater": "r1",
        },
        {
            "conversation": CONV_B,
            "criterion": "Asks about onset",
            "criterion_id": "asks",
            "label": None,
            "rater": "r1",
        },
    ]
    ls = load_labels(_write(tmp_path / "labels.jsonl", rows))
    assert ls.format == "jsonl" and len(ls.items) == 2 and len(ls.labels) == 5 and ls.skipped == 1
    assert [t.role for t in ls.items["a"].turns] == ["patient", "clinician"]
    # per-criterion grading, items in file order, criteria in first-seen order:
    # a/escalates -> met, a/asks -> not met, b/escalates -> met, b/asks -> unparseable x3
    replies = [
        json.dumps({"criteria_met": True}),
        json.dumps({"criteria_met": False}),
        json.dumps({"criteria_met": True}),
        "?",
        "?",
        "?",
    ]
    cfg = ModelConfig(spec=script("g", replies), temperature=0)
    judge = RubricJudge(make_backend(cfg), cfg, concurrency=1)
    report = await calibrate(judge, ls, mode="per-criterion")
    # judge vs labels: a/esc (T,T) (T,T); a/asks (F,F) (F,T); b/esc (T,F); b/asks has no label
    j = report.overall.judge
    assert (j.n, j.accuracy) == (5, pytest.approx(3 / 5))
    assert report.overall.unscored == 0
    # humans: a/esc r1 vs r2 agree; a/asks disagree
    h = report.overall.human
    assert (h.n, h.accuracy) == (2, pytest.approx(1 / 2))
    assert report.groups["Escalates to emergency care"].judge.n == 3


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "file is empty"),
        (b"not json\n", ":1: invalid JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b'{"conversation": [], "criterion": "x", "label": true, "rater": "r"}\n', "non-empty"),
        (b'{"conversation": [{"role": "user", "content": "hi"}], "criterion": "abc"}\n', "'label'"),
        (
            b'{"conversation": [{"role": "user", "content": "hi"}], "criterion": "abc",'
            b' "label": "maybe", "rater": "r"}\n',
            "label must be",
        ),
        (
            b'{"conversation": [{"role": "nurse", "content": "hi"}], "criterion": "abc",'
            b' "label": true, "rater": "r"}\n',
            "unknown role",
        ),
        (b'{"something": "else"}\n', "unknown labels format"),
    ],
)
def test_bad_label_files_say_where_and_what(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataFileError) as e:
        load_labels(path)
    assert needle in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)
