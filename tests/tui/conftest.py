"""Fixtures for the TUI: the app wired like ``clinsim tui`` wires it, with scripted models."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from textual._context import message_hook
from textual.message import Message

from personas import PersonaLibrary
from scenarios import ScenarioLibrary
from simulator.commands.wiring import judge_from_configs
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


M = TypeVar("M", bound=Message)


class MessageLog:
    """The messages an app dispatches, recorded by Textual's message hook, for a test to wait
    on a live episode's messages (``tui.messages``) instead of polling the status line.

    Textual keeps the hook in a context variable, which a message pump takes from the task
    that starts it: ``app.run_test(message_hook=log)`` reaches the screens the app opens
    itself (on a key press); for a screen the test pushes, call ``log.install()`` first."""

    def __init__(self) -> None:
        self.seen: list[Message] = []
        self._arrived = asyncio.Event()

    def __call__(self, message: Message) -> None:
        self.seen.append(message)
        self._arrived.set()

    def install(self) -> None:
        """Record the messages of the screens this task opens from now on: a screen a test
        pushes itself, or any screen under ``snap_compare`` (which takes no hook; call it in
        ``run_before``). ``run_test(message_hook=...)`` sets this same context variable."""
        message_hook.set(self)

    def of(self, kind: type[M]) -> list[M]:
        return [m for m in self.seen if isinstance(m, kind)]

    def mark(self) -> int:
        """A position in the log, for ``wait(since=...)``."""
        return len(self.seen)

    async def wait(
        self,
        pilot: Any,
        kind: type[M],
        *,
        count: int = 1,
        since: int = 0,
        where: Callable[[M], bool] = lambda m: True,
        timeout: float = 300,
        what: str = "",
    ) -> M:
        """Let the app run until the ``count``-th message of ``kind`` that ``where`` accepts
        (counted from position ``since``) has been dispatched and handled; return it. The
        wide timeout only keeps a hung episode from hanging the suite."""

        def found() -> list[M]:
            return [m for m in self.seen[since:] if isinstance(m, kind) and where(m)]

        app = pilot.app
        try:
            async with asyncio.timeout(timeout):
                while len(found()) < count:
                    await self._next(app)
        except TimeoutError:
            raise AssertionError(f"no {what or kind.__name__} within {timeout} s") from None
        await pilot.pause()  # the hook runs before the handlers: let the screens handle it
        return found()[count - 1]

    async def _next(self, app: Any) -> None:
        """Wait for the next message, or for the app to fail (as Textual's Pilot does): a
        failed app sends no more, and leaving ``run_test`` raises its error."""
        self._arrived.clear()
        waits = [
            asyncio.create_task(self._arrived.wait()),
            asyncio.create_task(app._exception_event.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if app._exception is not None:
            raise AssertionError(f"the app failed: {app._exception!r}")


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
    from simulator.batch import BatchSettings, manifest, plan, run_batch
    from simulator.commands.wiring import judge_factory
    from simulator.config import EpisodeLimits, role_config
    from simulator.session import Roles
    from simulator.store import RunStore

    scen, pers = ScenarioLibrary.load(), PersonaLibrary.load()
    chosen = [scen.get(s) for s in scenarios]
    cfgs = {r: role_config(r, None, {"spec": specs[r]}) for r in ("clinician", "patient", "judge")}
    episodes = plan(chosen, [pers.get("calm-adult")], [specs["clinician"]], repeats=1, seed=0)
    man, digest = manifest(
        episodes=episodes, clinicians=[cfgs["clinician"]], patient=cfgs["patient"],
        judge=cfgs["judge"], settings={"judge_mode": judge_mode},
    )  # fmt: skip
    roles = Roles.build(
        [cfgs["clinician"]], cfgs["patient"], [cfgs["judge"]],
        make_backend=make_backend, make_judge=judge_factory(judge_mode),
    )  # fmt: skip
    settings = BatchSettings(limits=EpisodeLimits(max_turns=1))
    async with roles:
        with RunStore(store_path) as st:
            st.open_run(run, man, digest, len(episodes), replace=False)
            await run_batch(st, run, episodes, roles, settings)
