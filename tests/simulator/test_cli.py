"""The command line: bad input gives one line and exit code 2; results land where promised;
``--help`` imports nothing heavy."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.schemas import EpisodeResult
from tests.conftest import grader_reply

CLINSIM = (
    [shutil.which("clinsim")]
    if shutil.which("clinsim")
    else [sys.executable, "-m", "simulator.cli"]
)


def clinsim(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [*CLINSIM, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def one_line_error(proc, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture
def scripted_roles(script) -> list[str]:
    from scenarios import ScenarioLibrary

    n = len(ScenarioLibrary.load().get("triage-indigestion-chest-pain").rubric)
    return [
        "--clinician",
        script("c", ["Does it come on with exertion?", "Call 911 now. [END]"]),
        "--patient",
        script("p", ["Yes, on the stairs."]),
        "--judge",
        script("j", [grader_reply(True, [2])] * n),
    ]


def test_bad_config_content(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("clinician: {spec: local:smollm2, temperature: 9}\n", encoding="utf-8")
    one_line_error(clinsim("run", "--config", str(cfg)), "run.yaml", "clinician.temperature")
    bad_scen = tmp_path / "scen"
    bad_scen.mkdir()
    (bad_scen / "x.yaml").write_text("id: X Y\n", encoding="utf-8")
    one_line_error(clinsim("run", "--scenarios-dir", str(bad_scen)), "x.yaml:1", "field 'id'")


def test_run_writes_the_documented_result(scripted_roles, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "r.json"
    proc = clinsim("run", *scripted_roles, "--seed", "7", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"saved: {out}" in proc.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    result = EpisodeResult.model_validate(data)
    t = data["transcript"]
    assert [x["role"] for x in t["turns"]] == ["patient", "clinician", "patient", "clinician"]
    assert t["turns"][2]["disclosed"] == ["f-exertion"]
    assert t["termination"] == "clinician_ended"
    assert set(t["models"]) == {"patient", "clinician"} and set(t["seeds"]) == {
        "patient",
        "clinician",
    }
    assert t["usage"]["clinician"]["calls"] == 2 and t["usage"]["patient"]["calls"] == 1
    assert data["judge"]["model"]["spec"].startswith("scripted:")
    assert all(v["status"] == "met" and v["evidence_turns"] == [2] for v in data["verdicts"])
    assert result.score == pytest.approx(
        sum(v.points for v in result.verdicts if v.status == "met") / 32
    )
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    # the live transcript is printed with the roles told apart
    assert "Patient" in proc.stdout and "Clinician" in proc.stdout and "Score:" in proc.stdout


def test_default_output_place_and_config_file_with_flag_override(script, tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        f'max_turns = 1\nseed = 3\n[clinician]\nspec = "{script("c", ["q1", "q2"])}"\n'
        f'temperature = 0.1\n[patient]\nspec = "{script("p", ["a1"])}"\n',
        encoding="utf-8",
    )
    home = tmp_path / "home"
    proc = clinsim(
        "run",
        "--config",
        str(cfg),
        "--no-judge",
        "--max-turns",
        "2",
        "-q",
        env={"CLINSIM_HOME": str(home)},
    )
    assert proc.returncode == 0, proc.stderr
    saved = Path(proc.stdout.strip().removeprefix("saved: "))
    assert saved.parent == home / "episodes" and saved.exists()
    data = json.loads(saved.read_text(encoding="utf-8"))
    assert data["transcript"]["models"]["clinician"]["temperature"] == 0.1
    assert sum(1 for t in data["transcript"]["turns"] if t["role"] == "clinician") == 2  # flag won
    assert data["verdicts"] == [] and data["score"] is None


def test_api_key_is_never_saved(script, tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"clinician: {{spec: '{script('c', ['x [END]'])}', api_key: sk-PLANTED-123}}\n",
        encoding="utf-8",
    )
    out = tmp_path / "r.json"
    proc = clinsim(
        "run",
        "--config",
        str(cfg),
        "--patient",
        script("p", ["y"]),
        "--no-judge",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert "sk-PLANTED-123" not in out.read_text(encoding="utf-8") + proc.stdout + proc.stderr


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\nfrom simulator import cli\n"
        "try:\n    cli.app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('llama_cpp', 'transformers', 'torch', 'textual', 'langgraph', "
        "'openai', 'jinja2') if m in sys.modules]\nprint('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


def test_scenario_and_persona_commands(tmp_path: Path) -> None:
    proc = clinsim("scenarios", "list", "--json", "--dimension", "SmartCare", "--language", "zh")
    rows = json.loads(proc.stdout)
    assert rows and all(r["dimension"] == "SmartCare" and r["language"] == "zh" for r in rows)
    assert {"id", "dimension", "family", "language"} <= set(rows[0])
    assert clinsim("scenarios", "show", rows[0]["id"]).returncode == 0
    one_line_error(clinsim("scenarios", "show", "nope"), "unknown scenario id")
    one_line_error(clinsim("scenarios", "list", "--family", "astrology"), "unknown family")
    people = json.loads(clinsim("personas", "list", "--json").stdout)
    assert len(people) >= 12 and all("id" in p for p in people)
    assert "rendered style" in clinsim("personas", "show", "sampled:5").stdout
    from scenarios import builtin_dir

    ok = clinsim("scenarios", "validate", str(builtin_dir()))
    assert ok.returncode == 0 and " 0 invalid" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\n", encoding="utf-8")
    proc = clinsim("scenarios", "validate", str(builtin_dir()), str(bad))
    assert proc.returncode == 2 and "bad.yaml" in proc.stderr and "1 invalid" in proc.stdout


def test_user_scenario_folder_runs(script, tmp_path: Path) -> None:
    from scenarios import builtin_dir

    folder = tmp_path / "mine"
    folder.mkdir()
    text = (builtin_dir() / "triage-indigestion-chest-pain.yaml").read_text(encoding="utf-8")
    (folder / "my-case.yaml").write_text(
        text.replace("id: triage-indigestion-chest-pain", "id: my-case"), encoding="utf-8"
    )
    out = tmp_path / "r.json"
    proc = clinsim(
        "run",
        "--scenarios-dir",
        str(folder),
        "--scenario",
        "my-case",
        "--no-judge",
        "--clinician",
        script("c", ["Bye [END]"]),
        "--patient",
        script("p", ["x"]),
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["transcript"]["scenario_id"] == "my-case"
    listed = json.loads(
        clinsim("scenarios", "list", "--json", "--scenarios-dir", str(folder)).stdout
    )
    assert "my-case" in {r["id"] for r in listed}
