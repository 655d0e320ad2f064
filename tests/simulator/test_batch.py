"""Batch runs into the run store: resume, refusal of a changed config, failure attribution,
reports equal to the scoring module, exports and replay (``kill -9``: test_reliability_crash)."""

from __future__ import annotations

import csv
import io
import json
import stat
from pathlib import Path

import pytest
import yaml

from scenarios import ScenarioLibrary
from simulator.scoring import aggregate, episode_score, group_aggregate
from simulator.store import RunStore
from tests.simulator.conftest import batched_reply, write
from tests.simulator.test_cli import clinsim, one_line_error

SCENARIOS = ["triage-*"]
N = sum(1 for s in ScenarioLibrary.load() if s.id.startswith("triage-"))


def batch(store: Path, run: str, roles: dict[str, str], *extra: str, timeout: float = 120):
    return clinsim(
        "batch", *[a for s in SCENARIOS for a in ("--scenario", s)],
        "--clinician", roles["clinician"], "--patient", roles["patient"],
        "--judge", roles["judge"], "--judge-mode", "batched", "--max-turns", "1",
        "--run", run, "--store", str(store), "-q", *extra,
        timeout=timeout,
    )  # fmt: skip


def test_batch_stores_every_episode_and_resume_runs_nothing_twice(tmp_path: Path, roles) -> None:
    store = tmp_path / "runs.sqlite"
    proc = batch(store, "r", roles, "--persona", "calm-adult", "--repeats", "2")
    assert proc.returncode == 0, proc.stderr
    assert f"{2 * N} finished, 0 failed, 0 already in the store" in proc.stdout
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    with RunStore(store) as st:
        rows = st.episodes("r")
        info = st.run("r")
        assert st.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert len(rows) == 2 * N and {r.status for r in rows} == {"done"}
    assert {r.trial for r in rows} == {1, 2}
    # same (scenario, persona, trial) -> same seed for any clinician; trials differ
    assert len({r.seed for r in rows}) == 2 * N
    assert info is not None and info.planned == 2 * N
    m = info.manifest
    assert set(m["hashes"]) == {"scenarios", "rubrics", "personas", "prompts"}
    assert m["versions"]["clinsim"] and m["config"]["judge_mode"] == "batched"
    assert any(k.startswith("judges/") for k in m["hashes"]["prompts"])
    again = batch(store, "r", roles, "--persona", "calm-adult", "--repeats", "2")
    assert again.returncode == 0, again.stderr
    assert f"0 finished, 0 failed, {2 * N} already in the store" in again.stdout


def test_changed_config_is_refused_and_replace_starts_again(tmp_path: Path, roles) -> None:
    store = tmp_path / "runs.sqlite"
    assert batch(store, "r", roles, "--persona", "calm-adult").returncode == 0
    proc = batch(store, "r", roles, "--persona", "calm-adult", "--repeats", "2")
    one_line_error(proc, "run 'r'", "another configuration", "config.repeats", "--replace")
    proc = batch(store, "r", roles, "--persona", "calm-adult", "--repeats", "2", "--replace")
    assert proc.returncode == 0 and f"{2 * N} finished" in proc.stdout, proc.stderr


def test_failures_are_attributed_and_only_infrastructure_ones_rerun(tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite"
    one = ["--scenario", "triage-indigestion-chest-pain", "--persona", "calm-adult"]
    base = {
        "patient": write(tmp_path / "p.yaml", ["OK."] * 50),
        "judge": write(tmp_path / "j.yaml", [batched_reply()] * 50),
    }
    cases = {
        # the clinician model answers nothing usable: its own failure, final
        "clinician-empty": ({"clinician": write(tmp_path / "c1.yaml", [""] * 10)}, "clinician"),
        # the server refuses (401): infrastructure, never scored, rerun on resume
        "server-auth": (
            {"clinician": write(tmp_path / "c2.yaml", [{"error": "auth"}] * 10)},
            "infrastructure",
        ),
        # the judge's replies are unusable: the judge's failure
        "judge-garbage": (
            {
                "clinician": write(tmp_path / "c3.yaml", ["Call 911."] * 10),
                "judge": write(tmp_path / "j3.yaml", ["not json"] * 10),
            },
            "judge",
        ),
    }
    for run, (override, role) in cases.items():
        roles = {**base, **override}
        proc = clinsim(
            "batch", *one, "--clinician", roles["clinician"], "--patient", roles["patient"],
            "--judge", roles["judge"], "--judge-mode", "batched", "--max-turns", "1",
            "--run", run, "--store", str(store), "-q",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "0 finished, 1 failed" in proc.stdout
        report = json.loads(
            clinsim("report", run, "--store", str(store), "--format", "json").stdout
        )
        assert report["failures_by_role"] == {role: 1}
        assert (report["episodes"], report["scored"], report["failed"]) == (1, 0, 1)
        assert report["score"] is None  # a failure is never scored as 0
    # fix the server and resume: only the infrastructure failure runs again
    (tmp_path / "c2.yaml").write_text(yaml.safe_dump(["Call 911."] * 10), encoding="utf-8")
    for run, expect in (("server-auth", "1 finished"), ("clinician-empty", "0 finished")):
        roles = {**base, **cases[run][0]}
        if run == "clinician-empty":
            roles["clinician"] = f"scripted:{tmp_path / 'c1.yaml'}"
        proc = clinsim(
            "batch", *one, "--clinician", roles["clinician"], "--patient", roles["patient"],
            "--judge", roles["judge"], "--judge-mode", "batched", "--max-turns", "1",
            "--run", run, "--store", str(store), "-q",
        )  # fmt: skip
        assert proc.returncode == 0 and expect in proc.stdout, proc.stdout + proc.stderr
    with RunStore(store) as st:
        fixed = st.episodes("server-auth")[0]
    assert fixed.status == "done" and fixed.attempts == 2 and fixed.score is not None


def test_report_numbers_equal_the_scoring_module(tmp_path: Path, roles) -> None:
    store = tmp_path / "runs.sqlite"
    proc = batch(store, "r", roles, "--persona", "calm-adult", "--persona", "anxious-low-*")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(clinsim("report", "r", "--store", str(store), "--format", "json").stdout)
    lines = clinsim("report", "r", "--store", str(store), "--format", "jsonl").stdout.splitlines()
    exported = [json.loads(line) for line in lines]
    assert len(exported) == report["episodes"] == report["scored"] == 2 * N
    scores = []
    for e in exported:
        from simulator.schemas import Verdict

        verdicts = [Verdict.model_validate(v) for v in e["result"]["verdicts"]]
        assert e["score"] == pytest.approx(episode_score(verdicts))
        scores.append(e["score"])
    expected = aggregate(scores, seed=0)
    assert report["score"] == pytest.approx(expected.mean)
    assert report["ci"] == [pytest.approx(expected.low), pytest.approx(expected.high)]
    by_persona = group_aggregate([(e["persona_id"], e["score"]) for e in exported], seed=0)
    assert {k: v["mean"] for k, v in report["by_persona"].items()} == {
        k: pytest.approx(v.mean, abs=1e-4) for k, v in by_persona.items()
    }
    rows = list(csv.DictReader(io.StringIO(clinsim("report", "r", "--store", str(store),
                                                   "--format", "csv").stdout)))  # fmt: skip
    assert len(rows) == 2 * N and {r["status"] for r in rows} == {"done"}
    hb = clinsim("report", "r", "--store", str(store), "--format", "healthbench").stdout
    first = json.loads(hb.splitlines()[0])
    assert first["completion"][0]["content"] == "Please call 911 now."
    assert first["rubrics"] and all("points" in c for c in first["rubrics"])
    assert report["cost"]["clinician"][0]["cost_usd"] == 0.0  # scripted: priced at $0


def test_unknown_prices_show_as_unpriced(tmp_path: Path, roles) -> None:
    store = tmp_path / "runs.sqlite"
    assert batch(store, "r", roles, "--persona", "calm-adult").returncode == 0
    prices = tmp_path / "prices.yaml"
    prices.write_text('"scripted:*c.yaml": {input: 1.0, output: 2.0}\n', encoding="utf-8")
    report = json.loads(
        clinsim("report", "r", "--store", str(store), "--format", "json",
                "--prices", str(prices)).stdout
    )  # fmt: skip
    clin = report["cost"]["clinician"][0]
    assert clin["cost_usd"] == pytest.approx(
        (clin["prompt_tokens"] * 1.0 + clin["completion_tokens"] * 2.0) / 1e6
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text('"x": {input: -1, output: 2}\n', encoding="utf-8")
    one_line_error(clinsim("report", "r", "--store", str(store), "--prices", str(bad)), "bad.yaml")


def test_replay_puts_verdicts_next_to_the_turns_they_cite(tmp_path: Path, roles) -> None:
    store = tmp_path / "runs.sqlite"
    proc = batch(store, "r", roles, "--persona", "calm-adult")
    assert proc.returncode == 0
    listing = clinsim("replay", "r", "--store", str(store))
    assert listing.returncode == 0 and "triage-indigestion-chest-pain" in listing.stdout
    shown = clinsim("replay", "r", "3", "--store", str(store), env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    turn2 = next(i for i, line in enumerate(lines) if line.startswith("[2] clinician"))
    assert lines[turn2 + 1].strip().startswith("↳")  # the verdicts citing turn 2 follow it
    one_line_error(clinsim("replay", "nope", "--store", str(store)), "no run 'nope'")
    one_line_error(clinsim("replay", "r", "99", "--store", str(store)), "no episode '99'")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--scenario", "nope-*"], ["no scenario matches 'nope-*'"]),
        (["--family", "astrology"], ["unknown family 'astrology'"]),
        (["--patient", "human"], ["cannot have a 'human' role"]),
    ],
)
def test_batch_bad_input(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    store = tmp_path / "s.sqlite"
    one_line_error(clinsim("batch", *args, "--store", str(store), "-q"), *needles)


def test_report_bad_input(tmp_path: Path) -> None:
    one_line_error(clinsim("report", "r", "--store", str(tmp_path / "none.sqlite")), "no run store")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    one_line_error(clinsim("report", "r", "--store", str(junk)), "not a clinsim run store")


def test_two_clinicians_in_one_run_and_compare_two_runs(tmp_path: Path, roles) -> None:
    store = tmp_path / "runs.sqlite"
    worse = write(tmp_path / "c2.yaml", ["I don't know."] * 200)
    judge2 = write(tmp_path / "j2.yaml", [batched_reply(met_even=False)] * 400)
    proc = clinsim(
        "batch", "--scenario", "triage-*", "--persona", "calm-adult",
        "--clinician", roles["clinician"], "--clinician", worse, "--patient", roles["patient"],
        "--judge", judge2, "--judge-mode", "batched", "--max-turns", "1",
        "--run", "two", "--store", str(store), "-q",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(clinsim("report", "two", "--store", str(store), "--format", "json").stdout)
    assert len(report["by_clinician"]) == 2 and report["episodes"] == 2 * N
    (cmp,) = report["comparisons"]
    assert cmp["n"] == N and cmp["only_a"] == cmp["only_b"] == 0
    assert batch(store, "one", roles, "--persona", "calm-adult").returncode == 0
    proc = clinsim("report", "one", "--store", str(store), "--compare", "two")
    one_line_error(proc, "different clinician models", "compare runs of one clinician each")
    worse_only = {**roles, "clinician": worse, "judge": judge2}
    assert batch(store, "three", worse_only, "--persona", "calm-adult").returncode == 0
    proc = clinsim("report", "one", "--store", str(store), "--format", "json", "--compare", "three")
    compared = json.loads(proc.stdout)["compare"]
    # different clinician labels: matched on (scenario, persona, trial), all N episodes
    assert compared["matched_on"] == "scenario|persona|trial"
    assert compared["overall"]["n"] == N
    with RunStore(store) as st:
        one = {r.pair_key: r.score for r in st.episodes("one")}
        three = {r.pair_key: r.score for r in st.episodes("three")}
    assert compared["overall"]["mean_diff"] == pytest.approx(
        sum(min(1, max(0, one[k])) - min(1, max(0, three[k])) for k in one) / N, abs=1e-4
    )
    assert compared["overall"]["mean_diff"] != 0  # the two judges' replies differ


def test_the_config_files_seed_and_judge_mode_apply_unless_flags_override(
    tmp_path: Path, roles
) -> None:
    """Flags over the config file over the defaults, for a batch as for 'clinsim run'."""
    store = tmp_path / "runs.sqlite"
    cfg = tmp_path / "run.yaml"
    cfg.write_text("seed: 7\njudge_mode: batched\n", encoding="utf-8")
    common = [
        "batch", "--scenario", "triage-indigestion-chest-pain", "--persona", "calm-adult",
        "--clinician", roles["clinician"], "--patient", roles["patient"],
        "--judge", roles["judge"], "--max-turns", "1", "--store", str(store), "-q",
        "--config", str(cfg),
    ]  # fmt: skip
    assert clinsim(*common, "--run", "file").returncode == 0
    assert clinsim(*common, "--run", "flags", "--seed", "3").returncode == 0
    with RunStore(store) as st:
        by_file, by_flags = st.run("file"), st.run("flags")
        seeds = {r.seed for r in st.episodes("file")} | {r.seed for r in st.episodes("flags")}
    assert by_file is not None and by_flags is not None
    assert by_file.manifest["config"]["seed"] == 7 and by_flags.manifest["config"]["seed"] == 3
    assert by_file.spec.config.judge_mode == "batched" == by_flags.spec.config.judge_mode
    assert len(seeds) == 2  # the episode seeds derive from the run seed


def test_the_printed_report_command_is_quoted_for_a_shell(tmp_path: Path, roles) -> None:
    store = tmp_path / "my runs.sqlite"
    proc = batch(store, "first run", roles, "--persona", "calm-adult")
    assert proc.returncode == 0, proc.stderr
    assert f"report: clinsim report 'first run' --store '{store}'" in proc.stdout


def test_a_run_being_written_is_refused_to_a_second_process_until_its_writer_dies(
    tmp_path: Path, roles
) -> None:
    """One writer per run: a second 'clinsim batch' on the same run, with --replace too, is
    refused with one line that names the writing process; once that process is gone (here
    killed, as a crash would), its lease is taken over."""
    import os
    import sqlite3
    import subprocess
    import time

    from tests.simulator.test_cli import CLINSIM

    store = tmp_path / "runs.sqlite"
    slow = dict(roles, clinician=write(tmp_path / "slow.yaml", [{"text": "Hm.", "delay_s": 600}]))
    args = [
        "batch", "--scenario", "triage-indigestion-chest-pain", "--persona", "calm-adult",
        "--clinician", slow["clinician"], "--patient", roles["patient"], "--no-judge",
        "--max-turns", "1", "--run", "r", "--store", str(store), "-q",
    ]  # fmt: skip
    first = subprocess.Popen([*CLINSIM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300  # only a guard: the lease appears in a second or two
        holder = None
        while holder is None:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first batch never took its lease"
            if store.exists():
                db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
                try:
                    holder = db.execute("SELECT pid FROM leases WHERE run = 'r'").fetchone()
                except sqlite3.OperationalError:
                    pass  # the store is being created
                finally:
                    db.close()
            time.sleep(0.1)
        assert holder[0] == first.pid
        one_line_error(clinsim(*args), "run 'r'", f"being written by process {first.pid}")
        one_line_error(clinsim(*args, "--replace"), f"being written by process {first.pid}")
    finally:
        first.kill()
        first.wait()
    fast = [a if a != slow["clinician"] else roles["clinician"] for a in args]
    proc = clinsim(*fast, "--replace")
    assert proc.returncode == 0, proc.stderr
    assert "1 finished" in proc.stdout
    with RunStore(store) as st:
        assert st.db.execute("SELECT count(*) FROM leases").fetchone()[0] == 0
    assert os.path.exists(store)


def test_an_episode_ended_by_the_time_limit_is_failed_not_scored(tmp_path: Path, roles) -> None:
    """A slow server must never become a low model score: the episode is the
    infrastructure's failure, and it runs again on resume."""
    store = tmp_path / "runs.sqlite"
    slow = write(tmp_path / "slow.yaml", ["How long?", {"text": "Hm.", "delay_s": 30}] * 5)
    args = (
        "--persona", "calm-adult", "--timeout", "1", "--max-turns", "3", "--scenario",
        "triage-indigestion-chest-pain",
    )  # fmt: skip
    proc = clinsim(
        "batch", *args, "--clinician", slow, "--patient", roles["patient"],
        "--judge", roles["judge"], "--judge-mode", "batched", "--run", "t",
        "--store", str(store), "-q",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "0 finished, 1 failed" in proc.stdout
    with RunStore(store) as st:
        (row,) = st.episodes("t")
    assert (row.status, row.failure_role, row.failure_kind) == (
        "failed",
        "infrastructure",
        "timeout",
    )
    assert row.score is None and "1 clinician turns" in (row.failure_message or "")


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_an_interrupted_batch_keeps_what_finished_and_prints_how_to_resume(
    tmp_path: Path, roles, how: str
) -> None:
    """Ctrl-C or SIGTERM: one line that gives the command to resume, with the run name that
    was generated; the lease is released, so that the resume is not refused."""
    import signal
    import sqlite3
    import subprocess
    import time

    from tests.simulator.test_cli import CLINSIM

    store = tmp_path / "my runs.sqlite"
    slow = write(tmp_path / "slow.yaml", [{"text": "Hm.", "delay_s": 600}])
    args = [
        "batch", "--scenario", "triage-indigestion-chest-pain", "--persona", "calm-adult",
        "--clinician", slow, "--patient", roles["patient"], "--no-judge", "--max-turns", "1",
        "--store", str(store), "-q",
    ]  # fmt: skip
    proc = subprocess.Popen(
        [*CLINSIM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300  # a guard only: the lease appears within seconds
    run = None
    while run is None:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the batch never started its run"
        if store.exists():
            db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
            try:
                row = db.execute("SELECT run FROM leases").fetchone()
                run = row[0] if row else None
            except sqlite3.OperationalError:
                pass
            finally:
                db.close()
        time.sleep(0.1)
    proc.send_signal(getattr(signal, how))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: interrupted"), err
    assert f"--run {run}" in lines[0] and f"'{store}'" in lines[0]
    with RunStore(store) as st:
        assert st.db.execute("SELECT count(*) FROM leases").fetchone()[0] == 0
