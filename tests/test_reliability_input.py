"""Bad input, for every kind of file the command line reads: one line on stderr that starts
with ``error: `` and says what is wrong and where, exit code 2, and nothing written (no result
file, no run store, no export, nothing under $CLINSIM_HOME).

One table of cases drives the real ``clinsim`` as a subprocess. Each case names the command,
the files it is given (written into the test's folder) and the words its error line must
contain. Every output a case could write lies under ``{tmp}/out``; that folder must not exist
afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from personas import sample_persona
from scenarios import builtin_dir
from scenarios.yamlio import MAX_FILE_BYTES, MAX_JSONL_BYTES
from simulator.record import MAX_RESULT_BYTES
from simulator.schemas import EpisodeResult
from tests.simulator.test_cli import clinsim, one_line_error

# ---------------------------------------------------------------- inputs


class Sparse(int):
    """A file of this many zero bytes, made without writing them (the loaders check the size
    before reading, so a file over their limit costs nothing)."""


def _scenario(edit) -> bytes:
    data = yaml.safe_load(
        (builtin_dir() / "triage-ankle-sprain-routine.yaml").read_text(encoding="utf-8")
    )
    data["id"] = "my-case"
    edit(data)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


GOOD_SCENARIO = _scenario(lambda d: None)
NO_POSITIVE_POINTS = _scenario(
    lambda d: d.update(rubric=[c for c in d["rubric"] if c["points"] < 0])
)
MAX_TURNS_X = _scenario(lambda d: d.update(max_turns="x"))
PERSONA_BAD_TYPE = (
    b"id: mine\nname: Mine\ntemperament: [calm]\nhealth_literacy: low\nverbosity: terse\n"
    b"recall: good\n"
)


def result_data(scenario_id: str = "triage-ankle-sprain-routine") -> dict[str, Any]:
    """A small, valid result (as 'clinsim run --no-judge' writes it), as JSON data."""
    transcript = {
        "episode_id": "e1",
        "scenario_id": scenario_id,
        "scenario_hash": "0" * 64,
        "persona": sample_persona(1).model_dump(mode="json"),
        "turns": [
            {"index": 1, "role": "patient", "content": "My ankle hurts."},
            {"index": 2, "role": "clinician", "content": "Can you walk on it?"},
        ],
        "termination": "max_turns",
        "models": {"patient": {"spec": "scripted:p.yaml"}, "clinician": {"spec": "scripted:c"}},
        "seeds": {"patient": 0, "clinician": 0},
        "usage": {"patient": {}, "clinician": {}},
        "started_at": "2025-01-01T00:00:00Z",
        "duration_s": 1.0,
    }
    data = {"clinsim_version": "0", "transcript": transcript}
    EpisodeResult.model_validate(data)
    return data


def turns_as_text() -> bytes:
    data = result_data()
    data["transcript"]["turns"] = "all of them"
    return json.dumps(data).encode()


LABEL = {
    "conversation": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    "criterion": "Greets the patient",
    "label": True,
    "rater": "dr-a",
}


def jsonl(*rows: object) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


# ---------------------------------------------------------------- commands

SCRIPTED = ["--clinician", "scripted:{tmp}/c.yaml", "--patient", "scripted:{tmp}/p.yaml"]
RUN = ["run", "--no-judge", *SCRIPTED, "--max-turns", "1", "--out", "{tmp}/out/r.json", "-q"]
BATCH_WITHOUT_CLINICIAN = [
    "batch", "--no-judge", "--patient", "scripted:{tmp}/p.yaml",
    "--scenario", "triage-ankle-sprain-routine", "--max-turns", "1",
    "--store", "{tmp}/out/s.sqlite", "--run", "r", "-q",
]  # fmt: skip
BATCH = [*BATCH_WITHOUT_CLINICIAN, "--clinician", "scripted:{tmp}/c.yaml"]
JUDGE = ["--judge", "scripted:{tmp}/c.yaml"]
SCORE = ["score", *JUDGE, "--out", "{tmp}/out/scored"]
CALIBRATE = ["judge", "calibrate", *JUDGE, "--save", "{tmp}/out/p.jsonl", "--labels"]
IMPORT = ["import", "--out", "{tmp}/out/imported"]
REPORT = ["report", "--store", "{store}", "--format", "json", "--out", "{tmp}/out/r.json"]


@dataclass(frozen=True)
class Case:
    args: list[str]
    needles: list[str]
    files: dict[str, bytes | Sparse] = field(default_factory=dict)


def case(
    id: str,
    args: list[str],
    needles: list[str],
    path: str | None = None,
    content: bytes | Sparse = b"",
    marks: Any = (),
) -> Any:
    """A table row; ``content`` is written to ``path`` under the test's folder first."""
    return pytest.param(Case(args, needles, {path: content} if path else {}), id=id, marks=marks)


NOT_UTF8 = b"id: caf\xe9\n"
SCEN = ["--scenarios-dir", "{tmp}/sd"]
PERS = ["--personas-dir", "{tmp}/pd"]
CFG_YAML = ["--config", "{tmp}/run.yaml"]
CFG_TOML = ["--config", "{tmp}/run.toml"]
PRICES = ["--prices", "{tmp}/prices.yaml"]

_LAUGH = b"x" * 1000
ALIAS_BOMB = (
    b"id: x\na: &a "
    + _LAUGH
    + b"\n"
    + b"b: &b ["
    + b", ".join([b"*a"] * 10)
    + b"]\n"
    + b"c: &c ["
    + b", ".join([b"*b"] * 10)
    + b"]\n"
    + b"d: &d ["
    + b", ".join([b"*c"] * 10)
    + b"]\n"
    + b"e: ["
    + b", ".join([b"*d"] * 10)
    + b"]\n"
)  # 216 bytes of aliases over a 1000-byte string: 10 million characters once expanded

CASES = [
    # --- scenario YAML (--scenarios-dir): run takes every defect; batch shares the loader
    case("scenario-malformed-run", RUN + SCEN, ["sd/x.yaml:3", "invalid YAML", "line 2"],
         "sd/x.yaml", b"id: x\ntitle: [unclosed\n"),
    case("scenario-bad-value-run", RUN + SCEN, ["sd/x.yaml:1", "cannot read '2020-13-45'"],
         "sd/x.yaml", b"id: 2020-13-45\n"),
    case("scenario-wrong-type-run", RUN + SCEN, ["sd/x.yaml:", "field 'max_turns'", "'x'"],
         "sd/x.yaml", MAX_TURNS_X),
    case("scenario-empty-run", RUN + SCEN, ["sd/x.yaml", "file is empty"], "sd/x.yaml", b""),
    case("scenario-too-big-run", RUN + SCEN,
         ["sd/x.yaml", f"more than the {MAX_FILE_BYTES} allowed", "split it"],
         "sd/x.yaml", Sparse(MAX_FILE_BYTES + 1)),
    case("scenario-not-utf8-run", RUN + SCEN,
         ["sd/x.yaml:1", "not UTF-8", "save the file as UTF-8"], "sd/x.yaml", NOT_UTF8),
    case("scenario-no-positive-points-run", RUN + SCEN,
         ["sd/x.yaml", "no criterion with positive points"], "sd/x.yaml", NO_POSITIVE_POINTS),
    case("scenario-unknown-id-run", [*RUN, "--scenario", "nope"],
         ["unknown scenario id 'nope'", "clinsim scenarios list"]),
    case("scenario-malformed-batch", BATCH + SCEN, ["sd/x.yaml:3", "invalid YAML"],
         "sd/x.yaml", b"id: x\ntitle: [unclosed\n"),
    case("scenario-no-positive-points-batch", BATCH + SCEN,
         ["sd/x.yaml", "no criterion with positive points"], "sd/x.yaml", NO_POSITIVE_POINTS),
    case("scenario-unknown-id-batch", [*BATCH, "--scenario", "nope"],
         ["no scenario matches 'nope'", "clinsim scenarios list"]),
    case("scenario-duplicate-key-run", RUN + SCEN,
         ["sd/x.yaml:3", "key 'title' appears twice", "first on line 2"],
         "sd/x.yaml", b"id: x\ntitle: One\ntitle: Two\n"),
    case("scenario-alias-bomb-run", RUN + SCEN, ["sd/x.yaml", "through YAML aliases"],
         "sd/x.yaml", ALIAS_BOMB),
    case("scenario-alias-bomb-batch", BATCH + SCEN, ["sd/x.yaml", "through YAML aliases"],
         "sd/x.yaml", ALIAS_BOMB),
    # --- --timeout and timeout_s: what makes no sense as a time limit
    case("timeout-negative-run", [*RUN, "--timeout=-5"], ["--timeout must be", "got -5"]),
    case("timeout-zero-batch", [*BATCH, "--timeout", "0"], ["--timeout must be", "got 0"]),
    case("timeout-tiny-run", [*RUN, "--timeout", "1e-9"], ["--timeout must be", "at least 1"]),
    case("timeout-nan-batch", [*BATCH, "--timeout", "nan"], ["--timeout must be", "got nan"]),
    case("config-timeout-nan-run", RUN + CFG_YAML, ["run.yaml:1", "timeout_s", "finite"],
         "run.yaml", b"timeout_s: .nan\n"),
    case("config-duplicate-key-run", RUN + CFG_YAML,
         ["run.yaml:2", "key 'seed' appears twice"], "run.yaml", b"seed: 1\nseed: 2\n"),
    # --- destinations that cannot take the file: refused before any work
    case("out-is-a-folder-run", [*RUN, "--out", "{tmp}"], ["--out", "is a folder"]),
    case("out-is-a-folder-report", [*REPORT, "r", "--out", "{tmp}"], ["--out", "is a folder"]),
    case("save-is-a-folder-calibrate", [*CALIBRATE, "{tmp}/l.jsonl", "--save", "{tmp}"],
         ["--save", "is a folder"], "l.jsonl", b"{}\n"),
    # --- flags out of range, unknown options and commands: one line too, not a usage box
    case("flag-out-of-range-batch", [*BATCH, "--concurrency", "0"],
         ["'--concurrency'", "greater than or equal to 1", "batch --help"]),
    case("flag-out-of-range-run", [*RUN, "--max-turns", "0"], ["'--max-turns'", "run --help"]),
    case("unknown-option-run", [*RUN, "--bogus"], ["No such option: --bogus", "run --help"]),
    case("unknown-command", ["nonexistent"], ["No such command 'nonexistent'", "--help"]),
    case("repeats-too-many-batch", [*BATCH, "--repeats", "100000000"],
         ["plans 100000000 episodes", "more than the 100000", "lower --repeats"]),
    # --- persona YAML (--personas-dir)
    case("persona-malformed-run", RUN + PERS, ["pd/x.yaml:2", "invalid YAML", "line 1"],
         "pd/x.yaml", b"id: [unclosed\n"),
    case("persona-wrong-type-run", RUN + PERS, ["pd/x.yaml:3", "field 'temperament'"],
         "pd/x.yaml", PERSONA_BAD_TYPE),
    case("persona-empty-run", RUN + PERS, ["pd/x.yaml", "file is empty"], "pd/x.yaml", b""),
    case("persona-too-big-run", RUN + PERS, ["pd/x.yaml", "more than the"],
         "pd/x.yaml", Sparse(MAX_FILE_BYTES + 1)),
    case("persona-not-utf8-run", RUN + PERS, ["pd/x.yaml:1", "not UTF-8"],
         "pd/x.yaml", NOT_UTF8),
    case("persona-unknown-id-run", [*RUN, "--persona", "nope"],
         ["unknown persona id 'nope'", "clinsim personas list"]),
    case("persona-wrong-type-batch", BATCH + PERS, ["pd/x.yaml:3", "field 'temperament'"],
         "pd/x.yaml", PERSONA_BAD_TYPE),
    case("persona-unknown-id-batch", [*BATCH, "--persona", "nope"],
         ["unknown persona id 'nope'"]),
    # --- run config (--config), YAML and TOML
    case("config-malformed-yaml-run", RUN + CFG_YAML, ["run.yaml:3", "invalid YAML", "line 2"],
         "run.yaml", b"seed: 1\nclinician: [unclosed\n"),
    case("config-malformed-toml-run", RUN + CFG_TOML, ["run.toml:1", "not valid TOML"],
         "run.toml", b"max_turns = \n"),
    case("config-temperature-hot-run", RUN + CFG_YAML,
         ["run.yaml:1", "field 'clinician.temperature'", "valid number", "'hot'"],
         "run.yaml", b"clinician: {spec: 'scripted:c.yaml', temperature: hot}\n"),
    case("config-max-turns-x-run", RUN + CFG_TOML, ["run.toml", "field 'max_turns'", "'x'"],
         "run.toml", b'max_turns = "x"\n'),
    case("config-unknown-spec-run", RUN + CFG_YAML,
         ["run.yaml:2", "field 'judge.spec'", "unknown model spec 'gpt4'", "local:smollm2"],
         "run.yaml", b"seed: 1\njudge: gpt4\n"),
    case("config-base-url-not-a-url-run", RUN + CFG_YAML,
         ["run.yaml:1", "field 'judge.base_url'", "not an http(s) URL"],
         "run.yaml", b"judge: {spec: 'openai:m', base_url: not a url}\n"),
    case("config-empty-run", RUN + CFG_YAML, ["run.yaml", "config file is empty", "--config"],
         "run.yaml", b"# nothing\n"),
    case("config-too-big-run", RUN + CFG_TOML, ["run.toml", "more than the"],
         "run.toml", Sparse(MAX_FILE_BYTES + 1)),
    case("config-not-utf8-run", RUN + CFG_YAML, ["run.yaml:1", "not UTF-8"],
         "run.yaml", NOT_UTF8),
    case("config-bad-value-batch", BATCH + CFG_YAML,
         ["run.yaml:1", "cannot read '2020-13-45'"], "run.yaml", b"seed: 2020-13-45\n"),
    case("config-temperature-hot-batch", BATCH + CFG_TOML,
         ["run.toml", "field 'clinician.temperature'"],
         "run.toml", b'[clinician]\nspec = "scripted:c.yaml"\ntemperature = "hot"\n'),
    case("config-missing-run", [*RUN, "--config", "{tmp}/none.yaml"],
         ["none.yaml", "config file not found"]),
    # --- price table (--prices): batch and report
    case("prices-malformed-batch", BATCH + PRICES, ["prices.yaml:1", "invalid YAML"],
         "prices.yaml", b"'x': {input: [1, output: 2}\n"),
    case("prices-wrong-type-batch", BATCH + PRICES,
         ["prices.yaml:2", "price for 'b'", "non-negative"],
         "prices.yaml", b"a: {input: 1, output: 2}\nb: {input: hot, output: 1}\n"),
    case("prices-not-finite-batch", BATCH + PRICES, ["prices.yaml:1", "price for 'x'"],
         "prices.yaml", b"x: {input: .nan, output: 1}\n"),
    case("prices-empty-batch", BATCH + PRICES, ["prices.yaml", "file is empty"],
         "prices.yaml", b""),
    case("prices-too-big-batch", BATCH + PRICES, ["prices.yaml", "more than the"],
         "prices.yaml", Sparse(MAX_FILE_BYTES + 1)),
    case("prices-not-utf8-batch", BATCH + PRICES, ["prices.yaml:1", "not UTF-8"],
         "prices.yaml", NOT_UTF8),
    case("prices-bad-value-report", [*REPORT, "r", *PRICES],
         ["prices.yaml:1", "cannot read 'abc'"],
         "prices.yaml", b"x: {input: !!int abc, output: 1}\n"),
    case("prices-wrong-type-report", [*REPORT, "r", *PRICES],
         ["prices.yaml:1", "price for 'x'"], "prices.yaml", b"x: [1, 2]\n"),
    # --- scripted backend files (--clinician scripted:FILE)
    case("scripted-malformed-run", [*RUN, "--clinician", "scripted:{tmp}/s.yaml"],
         ["s.yaml", "invalid YAML", "line 1"], "s.yaml", b"[unclosed\n"),
    case("scripted-wrong-type-run", [*RUN, "--clinician", "scripted:{tmp}/s.yaml"],
         ["s.yaml", "item 2 must be a string or a mapping with 'text'"],
         "s.yaml", b"- hello\n- [1, 2]\n"),
    case("scripted-bad-value-run", [*RUN, "--clinician", "scripted:{tmp}/s.yaml"],
         ["s.yaml", "item 2: delay_s 'soon' is not a number of seconds"], "s.yaml",
         b"- hello\n- {text: hi, delay_s: soon}\n"),
    case("scripted-empty-run", [*RUN, "--clinician", "scripted:{tmp}/s.yaml"],
         ["s.yaml", "expected a non-empty list of replies"], "s.yaml", b""),
    case("scripted-not-utf8-run", [*RUN, "--clinician", "scripted:{tmp}/s.yaml"],
         ["s.yaml", "utf-8"], "s.yaml", NOT_UTF8),
    case("scripted-too-big-run", [*RUN, "--clinician", "scripted:{tmp}/s.txt"],
         ["s.txt", "more than the"], "s.txt", b"a" * (MAX_FILE_BYTES + 1)),
    case("scripted-missing-run", [*RUN, "--clinician", "scripted:{tmp}/none.yaml"],
         ["scripted file not found", "none.yaml"]),
    case("scripted-malformed-batch",
         [*BATCH_WITHOUT_CLINICIAN, "--clinician", "scripted:{tmp}/s.yaml"],
         ["s.yaml", "invalid YAML"], "s.yaml", b"[unclosed\n"),
    # --- model specs and servers
    case("spec-unknown-run", [*RUN, "--clinician", "gpt4"],
         ["unknown model spec 'gpt4'", "local:smollm2"]),
    case("base-url-not-a-url-run",
         [*RUN, "--clinician", "openai:m", "--base-url", "not a url"],
         ["'not a url' is not an http(s) URL", "http://127.0.0.1:8000/v1"]),
    case("host-unreachable-run",
         [*RUN, "--clinician", "openai:m", "--base-url", "http://127.0.0.1:9/v1"],
         ["cannot reach http://127.0.0.1:9/v1", "check --base-url"]),
    case("spec-unknown-batch", [*BATCH, "--patient", "gpt4"], ["unknown model spec 'gpt4'"]),
    case("base-url-not-a-url-batch",
         [*BATCH_WITHOUT_CLINICIAN, "--clinician", "openai:m", "--base-url", "not a url"],
         ["is not an http(s) URL"]),
    case("host-unreachable-batch",
         [*BATCH_WITHOUT_CLINICIAN, "--clinician", "openai:m", "--base-url", "http://127.0.0.1:9/v1"],
         ["cannot reach http://127.0.0.1:9/v1"]),
    # --- result JSON (clinsim score FILE)
    case("result-malformed", [*SCORE, "{tmp}/r.json"], ["r.json:1", "not a clinsim result"],
         "r.json", b'{"clinsim_version": "0",'),
    case("result-wrong-type", [*SCORE, "{tmp}/r.json"],
         ["r.json", "transcript.turns", "expected a result JSON file written by 'clinsim run'"],
         "r.json", turns_as_text()),
    case("result-empty", [*SCORE, "{tmp}/r.json"], ["r.json", "file is empty"],
         "r.json", b"\n"),
    case("result-too-big", [*SCORE, "{tmp}/r.json"],
         ["r.json", f"more than the {MAX_RESULT_BYTES} allowed"],
         "r.json", Sparse(MAX_RESULT_BYTES + 1)),
    case("result-not-utf8", [*SCORE, "{tmp}/r.json"], ["r.json:1", "not UTF-8"],
         "r.json", b'{"clinsim_version": "\xff"}'),
    case("result-unknown-scenario", [*SCORE, "{tmp}/r.json"],
         ["r.json", "scenario 'nope' not found", "--scenarios-dir"],
         "r.json", json.dumps(result_data("nope")).encode()),
    # --- JSONL for clinsim import
    case("import-malformed", [*IMPORT, "healthbench", "{tmp}/in.jsonl"],
         ["in.jsonl:2", "invalid JSON"], "in.jsonl", b'{"prompt_id": "a"}\n{"prompt_id": \n'),
    case("import-wrong-type", [*IMPORT, "healthbench", "{tmp}/in.jsonl"],
         ["in.jsonl:1", "field 'prompt'", "expected a list"],
         "in.jsonl", jsonl({"prompt_id": "a", "prompt": "hi", "rubrics": []})),
    case("import-empty", [*IMPORT, "mediq", "{tmp}/in.jsonl"], ["in.jsonl", "file is empty"],
         "in.jsonl", b"\n\n"),
    case("import-too-big", [*IMPORT, "agentclinic", "{tmp}/in.jsonl"],
         ["in.jsonl", f"more than the {MAX_JSONL_BYTES} allowed"],
         "in.jsonl", Sparse(MAX_JSONL_BYTES + 1)),
    case("import-not-utf8", [*IMPORT, "healthbench", "{tmp}/in.jsonl"],
         ["in.jsonl:2", "not UTF-8"], "in.jsonl", b'{"a": 1}\n{"b": "\xff"}\n'),
    case("import-unknown-kind", [*IMPORT, "medline", "{tmp}/in.jsonl"],
         ["unknown importer 'medline'", "healthbench"], "in.jsonl", b'{"a": 1}\n'),
    # --- calibration labels (clinsim judge calibrate --labels)
    case("labels-malformed", [*CALIBRATE, "{tmp}/l.jsonl"], ["l.jsonl:1", "invalid JSON"],
         "l.jsonl", b"{'conversation': []}\n"),
    case("labels-wrong-type", [*CALIBRATE, "{tmp}/l.jsonl"],
         ["l.jsonl:2", "field 'label'", "true/false"],
         "l.jsonl", jsonl(LABEL, {**LABEL, "label": "maybe"})),
    case("labels-empty", [*CALIBRATE, "{tmp}/l.jsonl"], ["l.jsonl", "file is empty"],
         "l.jsonl", b""),
    case("labels-too-big", [*CALIBRATE, "{tmp}/l.jsonl"], ["l.jsonl", "more than the"],
         "l.jsonl", Sparse(MAX_JSONL_BYTES + 1)),
    case("labels-not-utf8", [*CALIBRATE, "{tmp}/l.jsonl"], ["l.jsonl:1", "not UTF-8"],
         "l.jsonl", b"\xff\n"),
    # --- stored runs and episodes (report, replay, calibrate --run)
    case("report-unknown-run", [*REPORT, "nope"], ["no run 'nope'", "runs: r"]),
    case("report-unknown-compare-run", [*REPORT, "r", "--compare", "nope"], ["no run 'nope'"]),
    case("replay-unknown-run", ["replay", "nope", "--store", "{store}"], ["no run 'nope'"]),
    case("replay-unknown-episode", ["replay", "r", "99", "--store", "{store}"],
         ["no episode '99'", "clinsim replay RUN"]),
    case("calibrate-unknown-run",
         ["judge", "calibrate", *JUDGE, "--run", "nope", "--store", "{store}"],
         ["no run 'nope'"]),
]  # fmt: skip


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run store holding one finished run, 'r'."""
    folder = tmp_path_factory.mktemp("store")
    write_scripts(folder)
    store = folder / "runs.sqlite"
    args = [a.replace("{tmp}/out/s.sqlite", str(store)) for a in BATCH]
    proc = clinsim(*[a.replace("{tmp}", str(folder)) for a in args])
    assert proc.returncode == 0, proc.stderr
    return store


def write_scripts(folder: Path) -> None:
    (folder / "c.yaml").write_text("- Rest it and see your GP if it is not better. [END]\n")
    (folder / "p.yaml").write_text("- OK, thanks.\n")


@pytest.mark.parametrize("c", CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    c: Case, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Every bad input of the table: exit 2, one ``error:`` line with the case's words, and
    no output file, run store or export, nor anything under $CLINSIM_HOME."""
    write_scripts(tmp_path)
    for name, content in c.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Sparse):
            with path.open("wb") as f:
                f.truncate(int(content))
        else:
            path.write_bytes(content)
    store = request.getfixturevalue("stored_run") if any("{store}" in a for a in c.args) else None
    args = [a.replace("{tmp}", str(tmp_path)).replace("{store}", str(store)) for a in c.args]
    home = tmp_path / "home"
    proc = clinsim(*args, env={"CLINSIM_HOME": str(home), "OPENAI_API_KEY": "sk-test"})
    one_line_error(proc, *c.needles)
    assert not (tmp_path / "out").exists(), sorted((tmp_path / "out").rglob("*"))
    assert not home.exists(), sorted(home.rglob("*"))


def test_the_same_commands_with_good_input_write_their_output(tmp_path: Path) -> None:
    """The table's command lines, given good files, do write under ``{tmp}/out`` (so the
    table's 'nothing written' is not true by accident)."""
    write_scripts(tmp_path)
    (tmp_path / "sd").mkdir()
    (tmp_path / "sd" / "x.yaml").write_bytes(GOOD_SCENARIO)
    (tmp_path / "pd").mkdir()
    (tmp_path / "pd" / "x.yaml").write_bytes(PERSONA_BAD_TYPE.replace(b"[calm]", b"calm"))
    (tmp_path / "run.yaml").write_text("seed: 3\n", encoding="utf-8")
    (tmp_path / "prices.yaml").write_text("x: {input: 1, output: 2}\n", encoding="utf-8")
    home = {"CLINSIM_HOME": str(tmp_path / "home")}
    good = [*RUN, *SCEN, *PERS, *CFG_YAML, "--scenario", "my-case", "--persona", "mine"]
    proc = clinsim(*[a.replace("{tmp}", str(tmp_path)) for a in good], env=home)
    assert proc.returncode == 0, proc.stderr
    transcript = json.loads((tmp_path / "out" / "r.json").read_text())["transcript"]
    assert (transcript["scenario_id"], transcript["persona"]["id"]) == ("my-case", "mine")
    proc = clinsim(*[a.replace("{tmp}", str(tmp_path)) for a in BATCH + PRICES], env=home)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "s.sqlite").is_file()


def test_out_to_a_device_writes_to_it_and_leaves_it_a_device(tmp_path: Path) -> None:
    """'--out /dev/null' (as root too): written to, never replaced by a regular file."""
    import os
    import stat

    write_scripts(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in RUN]
    args[args.index("--out") + 1] = os.devnull
    proc = clinsim(*args)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_a_write_removes_what_a_killed_earlier_write_left_behind(tmp_path: Path) -> None:
    import os

    from simulator.config import write_private

    dead = 2**22 + 12345  # above the kernel's default pid_max: no such process
    stale = tmp_path / f".r.json.tmp-{dead}"
    stale.write_text("half of an earlier result", encoding="utf-8")
    other = tmp_path / f".other.json.tmp-{dead}"  # another target's: not ours to remove
    other.write_text("x", encoding="utf-8")
    mine = tmp_path / f".r.json.tmp-{os.getppid()}"  # a live process's: left alone
    mine.write_text("y", encoding="utf-8")
    write_private(tmp_path / "r.json", "{}")
    assert not stale.exists() and other.exists() and mine.exists()
    assert (tmp_path / "r.json").read_text(encoding="utf-8") == "{}"


def test_reading_commands_open_the_store_read_only_and_refuse_what_is_not_one(
    tmp_path: Path, stored_run: Path
) -> None:
    """report, replay and calibrate --run never change a byte of the store file; a SQLite
    file of another program, an empty file and a store of a newer clinsim are refused with
    one line and left as they were."""
    import hashlib
    import shutil
    import sqlite3

    def digest(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest()

    store = tmp_path / "copy.sqlite"
    shutil.copyfile(stored_run, store)
    before = digest(store)
    for args in (
        ["report", "r", "--format", "json"],
        ["replay", "r"],
        ["judge", "calibrate", "--judge", "scripted:x.yaml", "--run", "r"],  # no reviews yet
    ):
        clinsim(*args, "--store", str(store))
    assert digest(store) == before

    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE notes (x TEXT)")
    db.commit()
    db.close()
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    newer = tmp_path / "newer.sqlite"
    shutil.copyfile(stored_run, newer)
    db = sqlite3.connect(newer)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    for path, needle in (
        (other, "not a clinsim run store"),
        (empty, "not a clinsim run store"),
        (newer, "made by a newer clinsim"),
    ):
        kept = digest(path)
        one_line_error(clinsim("report", "r", "--store", str(path)), needle, path.name)
        one_line_error(clinsim("replay", "r", "--store", str(path)), needle)
        assert digest(path) == kept, path
    db = sqlite3.connect(other)
    assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["notes"]
    db.close()


def test_score_refuses_a_name_that_is_both_a_folder_and_a_stored_run(
    tmp_path: Path, stored_run: Path
) -> None:
    import os
    import subprocess

    from tests.simulator.test_cli import CLINSIM

    (tmp_path / "r").mkdir()  # a folder named like the stored run 'r'
    proc = subprocess.run(
        [*CLINSIM, "score", "r", "--judge", "scripted:x.yaml", "--store", str(stored_run)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=dict(os.environ),
    )  # fmt: skip
    one_line_error(proc, "r names both", "./r")


def test_files_that_are_not_regular_files_are_refused_not_read_without_end(
    tmp_path: Path,
) -> None:
    """A FIFO (or /dev/zero) given as a config, a scripted file, a label file or a scenario
    file would be read until memory runs out: refused with one line instead."""
    import os

    write_scripts(tmp_path)
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    run = [a.replace("{tmp}", str(tmp_path)) for a in RUN]
    for args in (
        [*run, "--config", str(fifo)],
        [*run, "--clinician", f"scripted:{fifo}"],
        ["judge", "calibrate", "--judge", f"scripted:{tmp_path}/c.yaml", "--labels", str(fifo)],
        ["scenarios", "validate", str(fifo)],
        [*run, "--scenarios-dir", os.devnull],
    ):
        one_line_error(clinsim(*args), "not a regular file")
    assert not (tmp_path / "out").exists()
