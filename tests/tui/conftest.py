"""Fixtures for the TUI: the app wired like ``clinsim tui`` wires it, with scripted models."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from personas import PersonaLibrary
from scenarios import ScenarioLibrary
from simulator.cli_judging import judge_from_configs
from simulator.llm import ModelConfig, make_backend
from tui.app import ClinsimApp
from tui.services import Services

SCENARIO = "triage-indigestion-chest-pain"


def make_judge(cfg: ModelConfig, mode: str, seed: int) -> Any:
    """What 'clinsim tui' gives the UI."""
    return judge_from_configs([cfg], mode=mode, seed=seed)


@pytest.fixture(scope="session")
def libraries() -> tuple[ScenarioLibrary, PersonaLibrary]:
    return ScenarioLibrary.load(), PersonaLibrary.load()


@pytest.fixture
def services(tmp_path: Path, libraries) -> Callable[..., Services]:
    def make(**specs: str) -> Services:
        scen, pers = libraries
        return Services(
            scenarios=scen,
            personas=pers,
            store_path=tmp_path / "runs.sqlite",
            make_backend=make_backend,
            make_judge=make_judge,
            specs={"clinician": "", "patient": "", "judge": "", **specs},
            judge_mode="batched",
            episodes_dir=tmp_path / "episodes",
            reviewer="dr-test",
        )

    return make


async def until(pilot: Any, check: Callable[[], bool], timeout: float = 20, what: str = "") -> None:
    """Let the app run until ``check()`` holds (fails after ``timeout`` seconds)."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what or check}")
        await pilot.pause(0.05)
        await asyncio.sleep(0)


def app_for(services: Services, run: str | None = None) -> ClinsimApp:
    return ClinsimApp(services, run=run)


REVIEW_SCENARIOS = ["triage-indigestion-chest-pain", "triage-abdominal-pain-appendicitis"]


async def store_run(
    store_path: Path,
    run: str,
    specs: dict[str, str],
    *,
    scenarios: list[str] = REVIEW_SCENARIOS,
    judge_mode: str = "batched",
) -> None:
    """Run a small batch into the store, the way 'clinsim batch' does."""
    from simulator.batch import BatchSettings, Roles, manifest, plan, run_batch
    from simulator.config import role_config
    from simulator.store import RunStore

    scen, pers = ScenarioLibrary.load(), PersonaLibrary.load()
    chosen = [scen.get(s) for s in scenarios]
    cfgs = {r: role_config(r, None, {"spec": specs[r]}) for r in ("clinician", "patient", "judge")}
    episodes = plan(chosen, [pers.get("calm-adult")], [specs["clinician"]], repeats=1, seed=0)
    man, digest = manifest(
        episodes=episodes, clinicians=[cfgs["clinician"]], patient=cfgs["patient"],
        judge=cfgs["judge"], settings={"judge_mode": judge_mode},
    )  # fmt: skip
    judge, _ = make_judge(cfgs["judge"], judge_mode, 0)
    roles = Roles(
        clinicians=[(make_backend(cfgs["clinician"]), cfgs["clinician"])],
        patient=(make_backend(cfgs["patient"]), cfgs["patient"]),
        judge=judge,
    )
    with RunStore(store_path) as st:
        st.open_run(run, man, digest, len(episodes), replace=False)
        await run_batch(st, run, episodes, roles, BatchSettings(max_turns=1))
