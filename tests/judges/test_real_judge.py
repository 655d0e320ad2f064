"""The rubric judge on real models: the embedded SmolLM2 in-process and behind llama.cpp's
OpenAI-compatible server, in both modes; calibration on the CRAFT-MD dev labels end to end."""

from __future__ import annotations

import json

import pytest

from judges import RubricJudge
from simulator.llm import ModelConfig, make_backend
from tests.judges.test_calibration import LABELS, needs_craftmd
from tests.judges.test_rubric_judge import SC, transcript
from tests.simulator.test_cli import clinsim

pytestmark = pytest.mark.model


@pytest.mark.parametrize("mode", ["per-criterion", "batched"])
async def test_embedded_judge_gives_a_verdict_for_every_criterion(mode: str) -> None:
    cfg = ModelConfig(spec="local:smollm2", temperature=0, max_tokens=256)
    out = await RubricJudge(make_backend(cfg), cfg, mode=mode).judge(SC, transcript())  # type: ignore[arg-type]
    assert [v.criterion_id for v in out.verdicts] == [c.id for c in SC.rubric]
    assert all(v.status in {"met", "not_met"} for v in out.verdicts), [
        (v.status, v.explanation) for v in out.verdicts
    ]
    assert all(set(v.evidence_turns) <= {1, 2, 3} for v in out.verdicts)
    calls = len(SC.rubric) if mode == "per-criterion" else 1
    assert out.judge.usage.calls == calls and out.judge.usage.completion_tokens > 0


async def test_batched_judge_over_llama_cpp_openai_server(llama_server: str) -> None:
    cfg = ModelConfig(spec="openai:smollm2", base_url=llama_server, temperature=0, api_key="x")
    backend = make_backend(cfg)
    try:
        out = await RubricJudge(backend, cfg, mode="batched").judge(SC, transcript())
    finally:
        await backend.aclose()
    assert [v.criterion_id for v in out.verdicts] == [c.id for c in SC.rubric]
    assert out.unscored == 0, [v.explanation for v in out.verdicts]


@needs_craftmd
def test_calibration_on_craftmd_dev_labels_end_to_end() -> None:
    proc = clinsim(
        "judge", "calibrate", "--labels", str(LABELS), "--judge", "local:smollm2",
        "--mode", "batched", "--limit", "3", "--json",
        timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    d = json.loads(proc.stdout)
    assert d["items"] == 3 and d["judge"] == "local:smollm2" and d["mode"] == "batched"
    assert d["n"] + d["unscored"] == d["human_labels"] > 0
    assert d["n"] > 0 and 0.0 <= d["accuracy"] <= 1.0
    assert d["usage"]["calls"] >= 3
