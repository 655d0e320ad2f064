"""Secrets and health data. API keys planted in the environment and in a config file, and
sent to a real server (llama.cpp's, and a proxy that echoes the key back in its errors), never
appear in anything clinsim writes or prints: results, the run store, exports, the HTML report,
re-judged results, replays, logs. Everything clinsim creates is readable by its owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from tests.faultproxy import FaultProxy
from tests.simulator.conftest import batched_reply
from tests.simulator.test_cli import clinsim

ENV_KEY = "sk-PLANTED-env-4b1d8e77c2"
FILE_KEY = "sk-PLANTED-file-9e03a6f1d5"
FORMATS = ("json", "csv", "jsonl", "healthbench", "html")


def judge_rules(tmp_path: Path) -> str:
    path = tmp_path / "judge.yaml"
    path.write_text(
        yaml.safe_dump({"rules": [{"match": ".", "text": batched_reply()}]}), encoding="utf-8"
    )
    return f"scripted:{path}"


def every_output(root: Path, outputs: list[str]) -> list[tuple[str, bytes]]:
    found = [(str(p), p.read_bytes()) for p in root.rglob("*") if p.is_file()]
    return found + [(f"output {n}", text.encode()) for n, text in enumerate(outputs)]


@pytest.mark.model
def test_planted_keys_appear_in_no_output(llama_server: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    cfg = tmp_path / "run.yaml"
    small = {"spec": "openai:smollm2", "max_tokens": 16, "timeout": 60}
    cfg.write_text(
        yaml.safe_dump(
            {"clinician": small, "patient": {**small, "api_key": FILE_KEY}, "max_turns": 1}
        ),
        encoding="utf-8",
    )
    env = {"OPENAI_API_KEY": ENV_KEY, "CLINSIM_HOME": str(home)}
    judge = judge_rules(tmp_path)
    outputs: list[str] = []

    def run(*args: str) -> None:
        proc = clinsim(*args, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs.extend([proc.stdout, proc.stderr])

    common = ["--config", str(cfg), "--judge", judge, "--judge-mode", "batched"]
    run("run", *common, "--base-url", llama_server)
    run("batch", *common, "--base-url", llama_server, "--repeats", "2", "--run", "keys",
        "--scenario", "triage-indigestion-chest-pain")  # fmt: skip
    upstream = llama_server.removesuffix("/v1")
    with FaultProxy(upstream, rate=0.0, echo_auth=True) as proxy:
        # the server echoes the Authorization header into every error it returns
        run("batch", *common, "--base-url", proxy.url, "--run", "echo", "--retries", "1",
            "--scenario", "triage-indigestion-chest-pain")  # fmt: skip
        assert proxy.counts["requests"] >= 1
    for fmt in FORMATS:
        run("report", "keys", "--format", fmt, "--out", str(tmp_path / "exports" / f"r.{fmt}"))
    run("report", "keys")
    run("report", "echo", "--format", "json")
    run("replay", "keys")
    run("score", "keys", "--judge", judge, "--mode", "batched", "--out", str(tmp_path / "sc"))

    assert any("***" in text for text in outputs), "the echoed key was not seen, redacted"
    assert list((home / "episodes").glob("*.json")) and (home / "runs.sqlite").exists()
    for name, data in every_output(tmp_path, outputs):
        if name == str(cfg):
            continue
        for key in (ENV_KEY, FILE_KEY):
            assert key.encode() not in data, f"{key} found in {name}"
            assert key[-10:].encode() not in data, f"part of {key} found in {name}"


def test_everything_clinsim_writes_is_owner_only(script, tmp_path: Path) -> None:
    """With a permissive umask (022), results, the store (and its WAL files), exports,
    re-judged results and the folders clinsim makes are still private."""
    home = tmp_path / "home"
    env = {"CLINSIM_HOME": str(home)}
    roles = [
        "--clinician", script("c", ["Call 911 now. [END]"] * 20),
        "--patient", script("p", ["OK."] * 20),
        "--judge", judge_rules(tmp_path), "--judge-mode", "batched",
    ]  # fmt: skip
    old = os.umask(0o022)
    try:
        for args in (
            ["run", *roles],
            ["batch", *roles, "--scenario", "triage-*", "--run", "p", "--max-turns", "1"],
            *(
                ["report", "p", "--format", f, "--out", str(home / "exports" / f"p.{f}")]
                for f in FORMATS
            ),
            ["score", "p", "--judge", judge_rules(tmp_path), "--mode", "batched"],
        ):
            proc = clinsim(*args, env=env)
            assert proc.returncode == 0, proc.stderr
    finally:
        os.umask(old)
    made = [home, *home.rglob("*")]
    assert {p.suffix for p in made} >= {".json", ".sqlite", ".csv", ".html", ".jsonl"}
    assert len([p for p in made if p.is_dir()]) >= 4  # home, episodes, exports, scored/...
    for p in made:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & 0o077 == 0, f"{p} is {oct(mode)}"
