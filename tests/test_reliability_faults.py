"""Server faults: a batch through a fault-injecting proxy in front of llama.cpp's real server
ends every episode scored or failed with its role and reason, loses and duplicates nothing,
and the same run name again completes the failed ones. A key the server echoes back never
reaches the store; a key revoked mid-run fails the remaining episodes, attributed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.faultproxy import KINDS, FaultProxy
from tests.simulator.test_cli import clinsim, one_line_error

pytestmark = pytest.mark.model

EPISODES = 50
SCENARIO = "triage-indigestion-chest-pain"


def small_scenario(folder: Path) -> str:
    """The chest-pain case with a two-criterion rubric, so a 135M judge answers quickly."""
    from importlib import resources

    src = resources.files("scenarios") / "data" / f"{SCENARIO}.yaml"
    data = yaml.safe_load(src.read_text(encoding="utf-8"))
    data["id"] = "fault-chest-pain"
    keep = ("ask-character", "reassure-indigestion")
    data["rubric"] = [c for c in data["rubric"] if c["id"] in keep]
    folder.mkdir(exist_ok=True)
    (folder / "fault-chest-pain.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return "fault-chest-pain"


def run_config(
    path: Path, *, timeout: float, key: str = "", scripted: dict[str, str] | None = None
) -> Path:
    """Every role on the server (through the proxy) unless given a scripted spec; no error
    budget, so an episode whose call still fails after its retries ends failed."""
    role: dict[str, Any] = {
        "spec": "openai:smollm2", "max_tokens": 24, "timeout": timeout, "concurrency": 64
    }  # fmt: skip
    if key:
        role["api_key"] = key
    cfg: dict[str, Any] = {
        "clinician": role,
        "patient": role,
        "judge": {**role, "max_tokens": 160, "temperature": 0.0},
        "max_turns": 2,
        "error_budget": 0,
    }
    for name, spec in (scripted or {}).items():
        cfg[name] = {"spec": spec}
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def rules(path: Path, text: str) -> str:
    """A scripted model that always answers ``text``."""
    path.write_text(yaml.safe_dump({"rules": [{"match": ".", "text": text}]}), encoding="utf-8")
    return f"scripted:{path}"


GRADED = json.dumps(
    {
        "c1": {"criteria_met": True, "explanation": "asked", "evidence_turns": [2]},
        "c2": {"criteria_met": False, "explanation": "no", "evidence_turns": []},
    }
)


def batch(tmp_path: Path, url: str, run: str, *extra: str, config: Path) -> Any:
    proc = clinsim(
        "batch", "--config", str(config), "--base-url", url, "--scenarios-dir",
        str(tmp_path / "scen"), "--scenario", "fault-chest-pain", "--judge-mode", "batched",
        "--run", run, "--store", str(tmp_path / "runs.sqlite"), "--quiet", *extra,
        timeout=1500,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def rows(store: Path, run: str) -> list[dict[str, Any]]:
    with sqlite3.connect(store) as db:
        db.row_factory = sqlite3.Row
        got = db.execute("SELECT * FROM episodes WHERE run = ?", (run,)).fetchall()
    return [dict(r) for r in got]


def test_a_batch_through_faults_loses_nothing_and_resumes(llama_server: str, tmp_path: Path):
    """50 episodes whose clinician and patient talk through the proxy (the judge is scripted
    here, to keep the run short; the next test puts the judge behind the proxy)."""
    small_scenario(tmp_path / "scen")
    upstream = llama_server.removesuffix("/v1")
    store = tmp_path / "runs.sqlite"
    # Calls queue at one llama.cpp server (two in flight: a call waits for at most one other);
    # a 'slow' fault answers after the timeout.
    timeout = 12.0
    judge = rules(tmp_path / "judge.yaml", GRADED)
    cfg = run_config(tmp_path / "run.yaml", timeout=timeout, scripted={"judge": judge})
    with FaultProxy(upstream, rate=0.2, seed=7, slow_s=timeout + 1) as proxy:
        batch(
            tmp_path, proxy.url, "faults", "--repeats", str(EPISODES), "--concurrency", "2",
            "--retries", "2", config=cfg,
        )  # fmt: skip
        first = rows(store, "faults")
        # every fault kind happened, at about the rate asked for
        assert all(proxy.counts[k] >= 1 for k in KINDS), proxy.counts
        faults = sum(proxy.counts[k] for k in KINDS)
        assert 0.12 < faults / proxy.counts["requests"] < 0.3, proxy.counts

        # none lost, none duplicated: one row per planned episode
        keys = [r["key"] for r in first]
        assert len(keys) == EPISODES and len(set(keys)) == EPISODES
        done = [r for r in first if r["status"] == "done"]
        failed = [r for r in first if r["status"] == "failed"]
        assert done and failed, (len(done), len(failed))
        for r in done:
            assert r["score"] is not None and r["failure_role"] is None
        for r in failed:
            # server faults are the infrastructure's, never a model's; the reason is kept
            assert r["score"] is None
            assert r["failure_role"] == "infrastructure", r
            assert r["failure_kind"] in {"connection", "timeout", "rate_limit", "server",
                                         "malformed"}, r  # fmt: skip
            assert r["failure_message"]
        # replies cut off at the token limit (SmolLM2's own at 24 tokens, and the proxy's
        # injected ones) are kept and flagged, never failed
        turns = [
            t
            for r in done
            for t in json.loads(r["result"])["transcript"]["turns"]
            if "truncated" in t["flags"]
        ]
        assert turns, "no finish_reason=length reply reached a finished episode"
        assert proxy.counts["length"] >= 1

        # the same run name again runs exactly the failed ones, and they finish
        proxy.set(rate=0.0)
        before = proxy.counts["requests"]
        proc = batch(tmp_path, proxy.url, "faults", "--repeats", str(EPISODES),
                     "--concurrency", "2", "--retries", "2", config=cfg)  # fmt: skip
        assert f"{len(failed)} finished, 0 failed, {len(done)} already" in proc.stdout
        assert proxy.counts["requests"] > before
    second = {r["key"]: r for r in rows(store, "faults")}
    assert len(second) == EPISODES
    assert all(r["status"] == "done" for r in second.values())
    for r in done:  # finished episodes untouched
        assert second[r["key"]]["result"] == r["result"]
        assert second[r["key"]]["finished_at"] == r["finished_at"]
    for r in failed:
        assert second[r["key"]]["attempts"] == 2


def test_judge_calls_through_faults(llama_server: str, tmp_path: Path) -> None:
    """The judge behind the proxy, half its calls faulty and no retry: an episode whose grader
    call failed is failed as infrastructure ('judge_call'), never scored; a rerun scores it."""
    small_scenario(tmp_path / "scen")
    scripted = {
        "clinician": rules(tmp_path / "c.yaml", "Does it come on when you climb stairs?"),
        "patient": rules(tmp_path / "p.yaml", "Yes, on the stairs at work."),
    }
    cfg = run_config(tmp_path / "run.yaml", timeout=30, scripted=scripted)
    upstream = llama_server.removesuffix("/v1")
    # 'slow' (the main test covers timeouts) and 'length' (a cut-off grader reply is the
    # judge's own unusable reply, tested in tests/judges) are left out here
    kinds = ("429", "500", "503", "reset", "truncated", "malformed")
    with FaultProxy(upstream, rate=0.5, seed=3, kinds=kinds) as proxy:
        args = ["--repeats", "8", "--concurrency", "1", "--retries", "1"]
        batch(tmp_path, proxy.url, "judge", *args, config=cfg)
        first = rows(tmp_path / "runs.sqlite", "judge")
        assert len(first) == 8
        failed = [r for r in first if r["status"] == "failed"]
        assert failed and len(failed) < 8, [r["failure_kind"] for r in first]
        for r in failed:
            assert (r["failure_role"], r["failure_kind"]) == ("infrastructure", "judge_call")
            assert r["failure_message"].startswith("grader call failed") and r["score"] is None
        for r in first:
            if r["status"] == "done":
                assert r["score"] is not None
        proxy.set(rate=0.0)
        proc = batch(tmp_path, proxy.url, "judge", *args, config=cfg)
    assert f"{len(failed)} finished, 0 failed, {8 - len(failed)} already" in proc.stdout


def test_echoed_key_and_revoked_key(llama_server: str, tmp_path: Path) -> None:
    """A server that echoes the Authorization header into its error body: the key is redacted
    from every stored message. A key revoked mid-run (401 from then on): the later episodes are
    failed with 'auth', attributed to infrastructure, the earlier ones kept."""
    small_scenario(tmp_path / "scen")
    key = "sk-PLANTED-echo-7f3a9c"
    upstream = llama_server.removesuffix("/v1")
    with FaultProxy(upstream, rate=0.0, echo_auth=True) as proxy:
        cfg = run_config(tmp_path / "run.yaml", timeout=30, key=key)
        proc = batch(tmp_path, proxy.url, "echo", "--repeats", "2", "--retries", "1",
                     "--no-judge", config=cfg)  # fmt: skip
        assert key not in proc.stdout + proc.stderr
        got = rows(tmp_path / "runs.sqlite", "echo")
        assert [r["failure_kind"] for r in got] == ["server", "server"]
        assert all("***" in r["failure_message"] for r in got), got[0]["failure_message"]
        assert key.encode() not in (tmp_path / "runs.sqlite").read_bytes()

        proxy.set(echo_auth=False, auth_after=proxy.counts["requests"] + 6)
        batch(tmp_path, proxy.url, "revoked", "--repeats", "6", "--concurrency", "1",
              "--retries", "1", "--no-judge", config=cfg)  # fmt: skip
    got = rows(tmp_path / "runs.sqlite", "revoked")
    assert len(got) == 6
    kinds = [r["failure_kind"] for r in sorted(got, key=lambda r: r["trial"])]
    assert kinds[0] is None and kinds[-1] == "auth", kinds
    for r in got:
        if r["status"] == "failed":
            assert r["failure_role"] == "infrastructure"
            assert "HTTP 401" in r["failure_message"] and "API key" in r["failure_message"]


def test_a_refused_key_is_one_line_and_writes_nothing(llama_server: str, tmp_path: Path) -> None:
    """A server that refuses the API key (401) before anything runs: one line, exit code 2,
    no result file and no store."""
    upstream = llama_server.removesuffix("/v1")
    out, store = tmp_path / "r.json", tmp_path / "runs.sqlite"
    with FaultProxy(upstream, reject_key=True) as proxy:
        roles = ["--clinician", "openai:smollm2", "--patient", "openai:smollm2", "--no-judge",
                 "--base-url", proxy.url]  # fmt: skip
        for proc in (
            clinsim("run", *roles, "--out", str(out)),
            clinsim("batch", *roles, "--scenario", SCENARIO, "--store", str(store), "-q"),
        ):
            one_line_error(proc, "refused the API key (HTTP 401)", "OPENAI_API_KEY")
    assert not out.exists() and not store.exists()


# Each fault, one call, through clinsim's own aiohttp transport and through the OpenAI SDK
# (CLINSIM_HTTP=sdk): both must read it as the same kind of failure.
EXPECTED = {
    "429": ("rate_limit", 0.2),
    "500": ("server", None),
    "503": ("server", 0.2),
    "reset": ("connection", None),
    "slow": ("timeout", None),
    "truncated": ("connection", None),
    "malformed": ("malformed", None),
}


def test_each_fault_reads_the_same_through_either_transport(
    llama_server: str, http_transport: str
) -> None:
    import asyncio

    from simulator.llm import BackendError
    from simulator.llm._openai import OpenAIBackend

    upstream = llama_server.removesuffix("/v1")
    messages = [{"role": "user", "content": "Say hello."}]

    async def one(url: str, timeout: float = 120.0) -> Any:
        backend = OpenAIBackend("smollm2", base_url=url, timeout=timeout)
        try:
            return await backend.complete(messages, max_tokens=8, temperature=0.0)
        except BackendError as e:
            return e
        finally:
            await backend.aclose()

    with FaultProxy(upstream, rate=1.0, slow_s=3.0) as proxy:
        for kind, (want, retry_after) in EXPECTED.items():
            proxy.set(kinds=(kind,), _next_kind=0)
            # Only "slow" needs a short timeout (1 s against a reply held 3 s); "truncated" and
            # "length" wait for the real server's answer, which on a busy machine can take over 1 s.
            got = asyncio.run(one(proxy.url, 1.0 if kind == "slow" else 120.0))
            assert isinstance(got, BackendError), (kind, got)
            assert (got.kind, got.retry_after) == (want, retry_after), (kind, str(got))
            assert "smollm2" in str(got) and "\n" not in str(got), str(got)
        proxy.set(kinds=("length",), _next_kind=0)
        got = asyncio.run(one(proxy.url))
        assert got.finish_reason == "length" and got.text, got
