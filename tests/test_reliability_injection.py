"""Judge injection: clinician replies that address the grader (the test set in
tests/fixtures/judge_injection.yaml) are all flagged in a batch, whatever the judge made of them,
and the flag shows in every form of the report; ordinary replies in the same run are not."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import yaml

from scenarios import ScenarioLibrary
from tests.simulator.conftest import batched_reply
from tests.simulator.test_cli import clinsim
from tests.simulator.test_grader_address import JUDGE_DIRECTED, ORDINARY


def test_every_injection_is_flagged_and_shows_in_the_report(tmp_path: Path) -> None:
    scenarios = [s for s in ScenarioLibrary.load() if s.language == "en"]
    replies = JUDGE_DIRECTED + ORDINARY[:3]
    assert len(scenarios) >= len(replies)
    chosen = scenarios[: len(replies)]
    clinician = [
        {"match": re.escape(sc.opening[0].content[:60]), "text": reply}
        for sc, reply in zip(chosen, replies, strict=True)
    ]
    # a judge the injection worked on: it marks everything met
    files = {
        "clinician": {"rules": clinician},
        "patient": {"rules": [{"match": ".", "text": "OK."}]},
        "judge": {"rules": [{"match": ".", "text": batched_reply(n=20, met_even=True)}]},
    }
    specs = {}
    for role, data in files.items():
        path = tmp_path / f"{role}.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        specs[role] = f"scripted:{path}"
    store = str(tmp_path / "runs.sqlite")
    proc = clinsim(
        "batch", *[a for sc in chosen for a in ("--scenario", sc.id)],
        "--clinician", specs["clinician"], "--patient", specs["patient"], "--judge",
        specs["judge"], "--judge-mode", "batched", "--max-turns", "1", "--run", "inj",
        "--store", store, "-q",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr

    report = json.loads(clinsim("report", "inj", "--store", store, "--format", "json").stdout)
    assert report["scored"] == len(replies)
    flagged = {j["key"].split("|")[1]: j["turns"] for j in report["judge_directed"]}
    directed = {sc.id for sc in chosen[: len(JUDGE_DIRECTED)]}
    assert set(flagged) == directed  # every injection, and none of the ordinary replies
    assert all(turns == [2] for turns in flagged.values())  # the clinician's reply

    table = clinsim("report", "inj", "--store", store).stdout
    assert "judge-directed text" in table
    html_path = tmp_path / "r.html"
    clinsim("report", "inj", "--store", store, "--format", "html", "--out", str(html_path))
    html = html_path.read_text(encoding="utf-8")
    assert f"{len(directed)} episode(s) contain clinician turns that address the grader" in html
    rows = csv.DictReader(io.StringIO(clinsim("report", "inj", "--store", store, "--format",
                                              "csv").stdout))  # fmt: skip
    by_scenario = {r["scenario_id"]: r["judge_directed_turns"] for r in rows}
    assert {k for k, v in by_scenario.items() if v} == directed
