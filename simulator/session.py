"""Episode assembly, written once: the roles of a run (each clinician model, the patient, the
judge), checked before anything runs and closed afterwards, and the context of each episode
built from them. ``clinsim run``, ``clinsim batch``, the TUI and the tests' fixtures all go
through here; the observer protocol (``EpisodeObserver``) is how each of them watches an
episode.

This module knows no concrete judge: a front end passes a ``JudgeFactory`` (the command
layer's ``simulator.commands.wiring`` makes one from the ``judges`` package)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

from personas import Persona
from scenarios import Scenario
from simulator.config import EpisodeLimits
from simulator.judging import Judge
from simulator.llm import BackendConfigError, BackendError, ChatBackend, ModelConfig, RetryPolicy
from simulator.participants import PERSON_SPEC, Participant, participant
from simulator.schemas import Role
from simulator.state import EpisodeContext, EpisodeObserver

__all__ = [
    "EpisodeLimits",
    "EpisodeObserver",
    "JudgeFactory",
    "Roles",
    "Seat",
    "episode_context",
]

BackendFactory = Callable[..., ChatBackend]  # make_backend(cfg, calls=N)


class JudgeFactory(Protocol):
    """Builds the judge of a run from the judge role's configs (several: an ensemble), with
    the backends to close afterwards. Bad input raises ``BackendConfigError`` or
    ``ValueError``."""

    def __call__(
        self,
        cfgs: list[ModelConfig],
        *,
        seed: int,
        retry: RetryPolicy | None = None,
        calls: int | None = None,
    ) -> tuple[Judge, list[ChatBackend]]: ...


@dataclass
class Seat:
    """One role's place: its config, and the backend that plays it (None for a person)."""

    config: ModelConfig
    backend: ChatBackend | None = None

    @property
    def is_person(self) -> bool:
        return self.config.spec == PERSON_SPEC

    def participant(self, role: Role) -> Participant:
        return participant(role, self.config, self.backend)


@dataclass
class Roles:
    """The roles of a run: one seat per clinician model, the patient's seat, the judge (or
    none), and every backend to close when the run is over (``async with`` closes them)."""

    clinicians: list[Seat]
    patient: Seat
    judge: Judge | None = None
    backends: list[ChatBackend] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.backends:
            seats = [*self.clinicians, self.patient]
            self.backends = [s.backend for s in seats if s.backend is not None]

    @classmethod
    def build(
        cls,
        clinicians: Sequence[ModelConfig],
        patient: ModelConfig,
        judges: Sequence[ModelConfig] = (),
        *,
        make_backend: BackendFactory,
        make_judge: JudgeFactory | None = None,
        seed: int = 0,
        retry: RetryPolicy | None = None,
        calls: int | None = None,
    ) -> Roles:
        """Backends for every model config (a person's seat gets none) and the judge, if any
        judge config is given. ``calls``: model calls in flight per backend (a batch passes its
        episodes in flight). Raises ``BackendConfigError`` or ``ValueError`` on bad input,
        having closed nothing yet (nothing is open before the backends' first call)."""
        backends: list[ChatBackend] = []

        def seat(cfg: ModelConfig) -> Seat:
            if cfg.spec == PERSON_SPEC:
                return Seat(cfg)
            backend = make_backend(cfg, calls=calls)
            backends.append(backend)
            return Seat(cfg, backend)

        clinician_seats = [seat(c) for c in clinicians]
        patient_seat = seat(patient)
        judge: Judge | None = None
        if judges:
            if make_judge is None:
                raise ValueError("judge: no judge available here; leave the judge empty")
            judge, judge_backends = make_judge(list(judges), seed=seed, retry=retry, calls=calls)
            backends += judge_backends
        return cls(clinician_seats, patient_seat, judge, backends)

    @property
    def clinician(self) -> Seat:
        """The first (for a single episode: the only) clinician seat."""
        return self.clinicians[0]

    @property
    def has_person(self) -> bool:
        return any(s.is_person for s in [*self.clinicians, self.patient])

    async def check(self, *, tolerate_server_faults: bool = False) -> None:
        """Fail fast when a backend cannot work at all (``BackendConfigError``). A server that
        fails its check now raises ``BackendError`` too, unless ``tolerate_server_faults``
        (a batch: such a server fails its episodes, attributed, and the run goes on)."""
        for b in self.backends:
            try:
                await b.check()
            except BackendConfigError:
                raise
            except BackendError:
                if not tolerate_server_faults:
                    raise

    def context(
        self,
        scenario: Scenario,
        persona: Persona,
        *,
        seed: int,
        limits: EpisodeLimits | None = None,
        clinician: int = 0,
        observer: EpisodeObserver | None = None,
        judge: bool = True,
    ) -> EpisodeContext:
        """The context of one episode with these roles (clinician model number
        ``clinician``); ``judge=False`` leaves the judge out."""
        return EpisodeContext(
            scenario=scenario,
            persona=persona,
            clinician=self.clinicians[clinician].participant("clinician"),
            patient=self.patient.participant("patient"),
            judge=self.judge if judge else None,
            seed=seed,
            limits=limits or EpisodeLimits(),
            observer=observer or EpisodeObserver(),
        )

    async def aclose(self) -> None:
        for b in self.backends:
            await b.aclose()

    async def __aenter__(self) -> Roles:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def episode_context(
    scenario: Scenario,
    persona: Persona,
    *,
    clinician: tuple[ChatBackend | None, ModelConfig],
    patient: tuple[ChatBackend | None, ModelConfig],
    judge: Judge | None = None,
    seed: int = 0,
    limits: EpisodeLimits | None = None,
    observer: EpisodeObserver | None = None,
) -> EpisodeContext:
    """One episode's context from two (backend, config) pairs (a backend of None for a
    person): for a test or a benchmark that builds its own backends."""
    roles = Roles([Seat(clinician[1], clinician[0])], Seat(patient[1], patient[0]), judge)
    return roles.context(scenario, persona, seed=seed, limits=limits, observer=observer)
