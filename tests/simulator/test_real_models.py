"""Real components: the embedded SmolLM2 in-process (llama.cpp), the same model behind llama.cpp's
OpenAI-compatible server on 127.0.0.1, and the transformers backend on converted weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judges import GraderReply
from scenarios import ScenarioLibrary
from simulator.llm import (
    BackendConfigError,
    ModelConfig,
    complete_structured,
    make_backend,
)
from simulator.llm._openai import server_mode
from simulator.schemas import EpisodeResult
from tests.conftest import grader_reply
from tests.simulator.test_cli import clinsim

pytestmark = pytest.mark.model
RUBRIC = ScenarioLibrary.load().get("triage-indigestion-chest-pain").rubric
ASK = [
    {"role": "system", "content": "You are a helpful nurse."},
    {"role": "user", "content": "I have had a sore throat for two days. What should I do?"},
]


def test_embedded_model_runs_a_whole_episode_in_every_role(tmp_path: Path) -> None:
    out = tmp_path / "episode.json"
    proc = clinsim(
        "run", "--max-turns", "2", "--min-turns", "2", "--seed", "1", "--out", str(out), timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = EpisodeResult.model_validate_json(out.read_text(encoding="utf-8"))
    t = result.transcript
    assert sum(1 for x in t.turns if x.role == "clinician") >= 2
    assert all(x.content.strip() for x in t.turns)
    assert t.models["clinician"].spec == t.models["patient"].spec == "local:smollm2"
    assert t.usage["clinician"].completion_tokens > 0 and t.usage["patient"].completion_tokens > 0
    assert [v.criterion_id for v in result.verdicts] == [c.id for c in RUBRIC]
    assert all(v.status in {"met", "not_met", "unscored"} for v in result.verdicts)
    assert result.judge is not None and result.judge.usage.calls >= len(RUBRIC)
    assert result.judge.model.spec == "local:smollm2"
    # grammar-constrained output: the embedded judge's replies parse
    assert sum(v.status != "unscored" for v in result.verdicts) >= len(RUBRIC) - 1


async def test_embedded_model_structured_output_and_seeds() -> None:
    backend = make_backend(ModelConfig(spec="local:smollm2"))
    a = await backend.complete(ASK, temperature=0.8, max_tokens=24, seed=5)
    b = await backend.complete(ASK, temperature=0.8, max_tokens=24, seed=5)
    assert a.text == b.text and a.text.strip()
    assert a.prompt_tokens > 10 and a.completion_tokens > 0 and a.latency_s > 0
    res = await complete_structured(
        backend,
        [
            {
                "role": "user",
                "content": "Did the assistant advise emergency care? "
                "Transcript: [1] patient: chest pain [2] assistant: call 911 now. "
                "Answer as JSON with criteria_met, explanation, evidence_turns.",
            }
        ],
        GraderReply,
        seed=1,
    )
    assert res.value is not None
    assert res.completions[0].structured == "grammar"


async def test_openai_backend_over_http_against_llama_cpp_server(llama_server: str) -> None:
    cfg = ModelConfig(spec="openai:smollm2", base_url=llama_server, timeout=120)
    backend = make_backend(cfg)
    await backend.check()
    c = await backend.complete(ASK, temperature=0.0, max_tokens=24, seed=1)
    assert c.text.strip() and c.completion_tokens > 0 and c.prompt_tokens > 10
    assert c.finish_reason in {"stop", "length"}
    # structured output: json_schema is refused by this server; the client degrades and remembers
    res = await complete_structured(
        backend,
        [
            {
                "role": "user",
                "content": "Reply with JSON: criteria_met, explanation, "
                "evidence_turns, about: [1] patient: hi [2] assistant: hello",
            }
        ],
        GraderReply,
        seed=2,
    )
    assert res.value is not None
    assert res.completions[0].structured == "json_object"
    assert server_mode(llama_server) == "json_object"
    await backend.aclose()


def test_openai_backend_serves_several_event_loops_in_turn(
    llama_server: str, http_transport: str
) -> None:
    # One backend driven through asyncio.run several times, two calls at once under a limit of
    # one: every call answers, and nothing (session, connector, socket) is left unclosed.
    import asyncio
    import gc
    import warnings

    cfg = ModelConfig(spec="openai:smollm2", base_url=llama_server, timeout=120, concurrency=1)
    held = [make_backend(cfg)]

    async def two() -> list[str]:
        calls = [held[0].complete(ASK, temperature=0.0, max_tokens=4, seed=1) for _ in range(2)]
        return [c.text for c in await asyncio.gather(*calls)]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        texts = [asyncio.run(two()) for _ in range(3)]
        asyncio.run(held[0].aclose())
        held.clear()
        gc.collect()
    assert all(t and t == texts[0][0] for run in texts for t in run), texts
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not unclosed, unclosed


async def test_openai_backend_check_fails_fast_when_unreachable() -> None:
    from tests.conftest import free_port

    backend = make_backend(
        ModelConfig(spec="openai:m", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout=5)
    )
    with pytest.raises(BackendConfigError, match="cannot reach"):
        await backend.check()


def test_episode_with_openai_clinician_over_http(llama_server: str, script, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = clinsim(
        "run",
        "--clinician",
        "openai:smollm2",
        "--base-url",
        llama_server,
        "--patient",
        script("p", ["It comes on with the stairs.", "OK."]),
        "--judge",
        script("j", [grader_reply(False)] * len(RUBRIC)),
        "--max-turns",
        "2",
        "--min-turns",
        "2",
        "--out",
        str(out),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    clinician_turns = [t for t in data["transcript"]["turns"] if t["role"] == "clinician"]
    assert len(clinician_turns) == 2
    assert all(t["call"]["completion_tokens"] > 0 for t in clinician_turns)
    assert data["transcript"]["models"]["clinician"]["base_url"] == llama_server


async def test_hf_backend_on_converted_smollm2(smollm2_hf_dir: Path) -> None:
    backend = make_backend(ModelConfig(spec=f"hf:{smollm2_hf_dir}"))
    await backend.check()
    a = await backend.complete(ASK, temperature=0.0, max_tokens=20)
    b = await backend.complete(ASK, temperature=0.0, max_tokens=20)
    assert a.text.strip() and a.text == b.text
    assert a.prompt_tokens > 10 and 0 < a.completion_tokens <= 20
    s1 = await backend.complete(ASK, temperature=0.9, max_tokens=16, seed=3)
    s2 = await backend.complete(ASK, temperature=0.9, max_tokens=16, seed=3)
    assert s1.text == s2.text


async def test_hf_backend_bad_path() -> None:
    backend = make_backend(ModelConfig(spec="hf:/no/such/model/folder"))
    with pytest.raises(BackendConfigError, match="cannot load model"):
        await backend.check()
