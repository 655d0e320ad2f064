"""The settings behind the benchmarks (bench/RESULTS.md): calls in flight per role, paced
starts, checkpoint-free batch episodes, the embedded model's state cache setting."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from personas import PersonaLibrary
from scenarios import ScenarioLibrary
from simulator.batch import BatchSettings, plan, run_batch
from simulator.config import EpisodeLimits
from simulator.episode import EpisodeRunner
from simulator.llm import BackendConfigError, Completion, ModelConfig, calls_limit, make_backend
from simulator.session import Roles, Seat, episode_context
from simulator.store import RunStore

CFG = ModelConfig(spec="openai:m", base_url="http://127.0.0.1:9/v1")


def test_calls_in_flight_follow_the_batch_unless_the_config_caps_them() -> None:
    assert calls_limit(CFG) == 16  # a single episode
    assert calls_limit(CFG, 256) == 256  # a batch: one call per episode in flight
    capped = CFG.model_copy(update={"concurrency": 4})
    assert calls_limit(capped, 256) == 4
    backend: Any = make_backend(CFG, calls=256)
    assert backend._limit.n == 256
    assert "concurrency" not in CFG.public()  # operational: not part of a run's identity


class Clock:
    """A backend that notes when each episode (told apart by its system prompt) first calls."""

    spec = "test:clock"

    def __init__(self, first: dict[str, float], replied: list[float] | None = None) -> None:
        self.first = first
        self.replied = replied if replied is not None else []

    async def complete(self, messages: Any, **kw: Any) -> Completion:
        self.first.setdefault(messages[0]["content"], time.monotonic())
        await asyncio.sleep(0.2)
        self.replied.append(time.monotonic())
        return Completion(text="Tell me more about that.", finish_reason="stop")

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def first_calls(
    tmp_path: Path, start_rate: float | None, replied: list[float] | None = None
) -> list[float]:
    scenarios = sorted(ScenarioLibrary.load(), key=lambda s: s.id)[:6]
    persona = PersonaLibrary.load().get("calm-adult")
    episodes = plan(scenarios, [persona], ["c"], repeats=1, seed=0)
    first: dict[str, float] = {}
    cfg = ModelConfig(spec="scripted:x")
    roles = Roles(clinicians=[Seat(cfg, Clock(first, replied))], patient=Seat(cfg, Clock({})))
    settings = BatchSettings(
        concurrency=6, start_rate=start_rate, limits=EpisodeLimits(max_turns=1)
    )
    with RunStore(tmp_path / f"runs-{start_rate}.sqlite") as store:
        store.open_run("r", {}, "h", len(episodes), replace=False)
        progress = asyncio.run(run_batch(store, "r", episodes, roles, settings))
    assert progress.done == 6
    assert len(first) == 6
    return sorted(first.values())


def test_start_rate_spreads_the_first_calls(tmp_path: Path) -> None:
    paced = first_calls(tmp_path, 20.0)  # 6 starts at 20 per second: 0.25 s from first to last
    assert paced[-1] - paced[0] >= 0.2
    assert all(b - a >= 0.03 for a, b in itertools.pairwise(paced))
    # unpaced, every episode makes its first call before any call has been answered (an
    # order of events, not a time bound: it holds on a loaded machine too)
    replied: list[float] = []
    at_once = first_calls(tmp_path, None, replied)
    assert at_once[-1] < min(replied)


async def test_an_episode_without_checkpoints_is_the_same_episode(script) -> None:
    lib = ScenarioLibrary.load()
    scenario = sorted(lib, key=lambda s: s.id)[0]
    persona = PersonaLibrary.load().get("calm-adult")
    texts = ["What brings you in?", "How long has it lasted? [END]"]
    results = []
    for resumable in (True, False):
        cfg = ModelConfig(spec="scripted:x")
        ctx = episode_context(
            scenario,
            persona,
            clinician=(make_backend(ModelConfig(spec=script("c", texts))), cfg),
            patient=(
                make_backend(ModelConfig(spec=script("p", ["Since Monday.", "Ow."]))),
                cfg,
            ),
            seed=3,
        )
        runner = EpisodeRunner(resumable=resumable)
        result = await runner.start(ctx, episode_id="e1")
        results.append(result)
        assert (runner.checkpointer is None) is (not resumable)
    with_cp, without = (r.transcript for r in results)  # type: ignore[union-attr]

    def same(t: Any) -> dict[str, Any]:
        return t.model_dump(exclude={"call": {"latency_s"}})

    assert [same(t) for t in with_cp.turns] == [same(t) for t in without.turns]
    assert len(with_cp.turns) >= 4
    assert with_cp.termination == without.termination


def test_local_cache_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator.llm._local import DEFAULT_CACHE_MB, _cache_mb

    monkeypatch.delenv("CLINSIM_LOCAL_CACHE_MB", raising=False)
    assert _cache_mb() == DEFAULT_CACHE_MB
    monkeypatch.setenv("CLINSIM_LOCAL_CACHE_MB", "0")
    assert _cache_mb() == 0
    monkeypatch.setenv("CLINSIM_LOCAL_CACHE_MB", "lots")
    with pytest.raises(BackendConfigError, match="CLINSIM_LOCAL_CACHE_MB='lots'"):
        _cache_mb()
