"""Batch runs: scenarios x personas x repeats x clinician models, concurrently, into the run
store; resumable; every failure attributed to infrastructure or to a role.

The batch runner takes its judge as an argument, like the episode runner (the CLI wires one in).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from personas import Persona
from scenarios import Scenario
from simulator.config import EpisodeLimits
from simulator.episode import EpisodeRunner
from simulator.llm import ModelConfig, is_infrastructure
from simulator.record import scenario_hash
from simulator.schemas import EpisodeResult, Failure, RunManifest, Termination
from simulator.session import Roles
from simulator.store import EpisodeRow, RubricItem, RunStore
from simulator.version import __version__


@dataclass(frozen=True)
class PlannedEpisode:
    """One episode of a batch. ``pair_key`` is the same for every clinician model, so two
    models are compared on the same (scenario, persona, trial) with the same seed."""

    key: str
    pair_key: str
    clinician_index: int
    clinician: str
    scenario: Scenario
    persona: Persona
    trial: int
    seed: int


def episode_seed(base: int, scenario_id: str, persona_id: str, trial: int) -> int:
    digest = hashlib.sha256(f"{base}:{scenario_id}:{persona_id}:{trial}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def clinician_labels(specs: Sequence[str]) -> list[str]:
    """Labels that tell clinician models apart in keys (the spec; numbered if repeated)."""
    labels = []
    for n, spec in enumerate(specs):
        labels.append(spec if specs.count(spec) == 1 else f"{spec}#{n + 1}")
    return labels


def plan(
    scenarios: Sequence[Scenario],
    personas: Sequence[Persona],
    clinicians: Sequence[str],
    *,
    repeats: int,
    seed: int,
) -> list[PlannedEpisode]:
    out = []
    for ci, label in enumerate(clinician_labels(clinicians)):
        for sc in scenarios:
            for p in personas:
                for trial in range(1, repeats + 1):
                    pair_key = f"{sc.id}|{p.id}|{trial}"
                    out.append(
                        PlannedEpisode(
                            key=f"{label}|{pair_key}",
                            pair_key=pair_key,
                            clinician_index=ci,
                            clinician=label,
                            scenario=sc,
                            persona=p,
                            trial=trial,
                            seed=episode_seed(seed, sc.id, p.id, trial),
                        )
                    )
    return out


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def prompt_hashes() -> dict[str, str]:
    """sha256 of every prompt template (patient, clinician protocol, grader)."""
    out = {}
    for package in ("simulator", "judges"):
        folder = resources.files(package) / "prompts"
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".j2"):
                out[f"{package}/{entry.name}"] = hashlib.sha256(entry.read_bytes()).hexdigest()
    return out


def manifest(
    *,
    episodes: Sequence[PlannedEpisode],
    clinicians: Sequence[ModelConfig],
    patient: ModelConfig,
    judge: ModelConfig | Sequence[ModelConfig] | None,
    settings: dict[str, Any],
) -> tuple[RunManifest, str]:
    """What defines a run, and its hash. Versions are recorded but not hashed: resuming with a
    newer clinsim is allowed, a changed scenario, persona, prompt, rubric or model is not.
    The hash is of the plain settings as built here, so that runs stored before the manifest
    was typed resume."""
    scenarios = {e.scenario.id: e.scenario for e in episodes}
    personas = {e.persona.id: e.persona for e in episodes}
    judges = judge if isinstance(judge, Sequence) else ([judge] if judge is not None else [])
    config = {
        "clinicians": [c.public() for c in clinicians],
        "patient": patient.public(),
        "judges": [j.public() for j in judges],
        **settings,
        "scenarios": sorted(scenarios),
        "personas": sorted(personas),
    }
    hashes = {
        "scenarios": {k: scenario_hash(v) for k, v in sorted(scenarios.items())},
        "rubrics": {
            k: _sha([c.model_dump() for c in v.rubric]) for k, v in sorted(scenarios.items())
        },
        "personas": {k: _sha(v.model_dump(mode="json")) for k, v in sorted(personas.items())},
        "prompts": prompt_hashes(),
    }
    data = {"config": config, "hashes": hashes}
    versions = {"clinsim": __version__, "models": model_versions(clinicians, patient, judges)}
    typed = RunManifest.model_validate({**data, "versions": versions, "episodes": len(episodes)})
    return typed, _sha(data)


def model_versions(
    clinicians: Sequence[ModelConfig], patient: ModelConfig, judges: Sequence[ModelConfig]
) -> dict[str, str]:
    """What can be known of each model's version without calling it: for embedded models the
    model file's name and size; for servers the spec (servers report versions inconsistently)."""
    out: dict[str, str] = {}
    for cfg in [*clinicians, patient, *judges]:
        if cfg.spec.startswith("local:"):
            try:
                from simulator.llm._local import local_model_path

                path = local_model_path(cfg.spec.partition(":")[2])
                out[cfg.spec] = f"{path.name} ({path.stat().st_size} bytes)"
            except Exception as e:  # a missing model is reported when the run starts
                out[cfg.spec] = f"unknown ({type(e).__name__})"
        else:
            out[cfg.spec] = cfg.spec
    return out


# ---------------------------------------------------------------------- failures


def attribute(result: EpisodeResult, judged: bool) -> Failure | None:
    """Why an episode failed, and whose fault it was; None when it can be scored.

    An episode ended by its time limit is the infrastructure's (or the run configuration's):
    failed, never scored, and run again on resume. A model that breaks the conversation (empty
    or unusable replies past the error budget) is that role's failure; a server that fails,
    times out or refuses is infrastructure (``simulator.llm.is_infrastructure``, next to the
    retry rules). A judge that could not score anything is the judge's failure when its
    replies were unusable, and infrastructure when its calls failed.
    """
    t = result.transcript
    if t.termination == Termination.TIMEOUT:
        spoke = sum(1 for turn in t.turns if turn.role == "clinician" and turn.source != "opening")
        return Failure(
            role="infrastructure",
            kind="timeout",
            message=f"the episode's time limit ended it after {spoke} clinician turns; a slow "
            "server or a tight --timeout is not the model's score",
        )
    if t.termination == Termination.ERROR_BUDGET and t.errors:
        last = t.errors[-1]
        role = "infrastructure" if is_infrastructure(last.kind) else last.role
        return Failure(role=role, kind=last.kind, message=f"{last.role}: {last.message}")
    if judged and result.score is None:
        failed_calls = [v for v in result.verdicts if v.unscored_reason == "call_failed"]
        if failed_calls:
            return Failure(
                role="infrastructure", kind="judge_call", message=failed_calls[0].explanation
            )
        if result.unscored:
            return Failure(
                role="judge",
                kind="unusable_reply",
                message="no usable grader verdict on a positive criterion",
            )
    return None


# ---------------------------------------------------------------------- running


@dataclass
class Progress:
    """Live counters for a progress display."""

    planned: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    in_flight: int = 0
    completion_tokens: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def remaining(self) -> int:
        return self.planned - self.skipped - self.done - self.failed

    def tokens_per_s(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.completion_tokens / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        finished = self.done + self.failed
        if finished == 0:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / finished * self.remaining


@dataclass
class BatchSettings:
    concurrency: int = 8
    # Episodes started per second while the batch fills up to `concurrency` (None: all at
    # once). Spreading the starts keeps the first calls, and every call after them, from
    # arriving and being handled all at once (bench/RESULTS.md); it also spares a rate-limited
    # API a burst. At the default, 256 episodes are in flight after half a second.
    start_rate: float | None = 500.0
    limits: EpisodeLimits = field(default_factory=EpisodeLimits)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run with Python's cyclic garbage collector triggered less often: with hundreds of
    episodes in flight, the default threshold has it scan every live object many times a
    second, about a quarter of the CPU of a call (bench/RESULTS.md). Objects alive before the
    batch are frozen (never scanned); the settings are restored afterwards."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def rubric_meta(scenario: Scenario) -> list[RubricItem]:
    return [
        {"id": c.id, "axis": str(c.axis), "points": c.points, "critical": c.critical}
        for c in scenario.rubric
    ]


def _row(
    run: str,
    ep: PlannedEpisode,
    *,
    result: EpisodeResult | None,
    failure: Failure | None,
    duration_s: float,
) -> EpisodeRow:
    usage: dict[str, dict[str, Any]] = {}
    if result is not None:
        for role, u in result.transcript.usage.items():
            usage[role] = {"spec": result.transcript.models[role].spec, **u.model_dump()}
        if result.judge is not None:
            usage["judge"] = {"spec": result.judge.model.spec, **result.judge.usage.model_dump()}
            if result.judge.members:
                usage["judge"]["members"] = [
                    {"spec": m.model.spec, **m.usage.model_dump()} for m in result.judge.members
                ]
    scored = failure is None and result is not None
    return EpisodeRow(
        run=run,
        key=ep.key,
        pair_key=ep.pair_key,
        clinician=ep.clinician,
        scenario_id=ep.scenario.id,
        persona_id=ep.persona.id,
        trial=ep.trial,
        seed=ep.seed,
        dimension=ep.scenario.dimension.value,
        family=ep.scenario.family.value,
        language=ep.scenario.language,
        status="done" if failure is None else "failed",
        failure_role=None if failure is None else failure.role,
        failure_kind=None if failure is None else failure.kind,
        failure_message=None if failure is None else failure.message[:2000],
        score=result.score if scored and result is not None else None,
        critical_pass=result.critical_pass if scored and result is not None else None,
        unscored=result.unscored if result is not None else 0,
        rubric=rubric_meta(ep.scenario),
        judge_directed_turns=list(result.transcript.judge_directed_turns) if result else [],
        usage=usage,
        result=result.model_dump_json() if result is not None else None,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        duration_s=round(duration_s, 3),
    )


async def run_batch(
    store: RunStore,
    run: str,
    episodes: Sequence[PlannedEpisode],
    roles: Roles,
    settings: BatchSettings,
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> Progress:
    """Run every planned episode not already finished; resumable.

    Finished episodes, and those that failed because of a model's behaviour, are kept; those
    that are missing or failed for infrastructure reasons run (again). Each finished episode is
    committed to the store on its own, as soon as it ends.
    """
    stored = store.statuses(run)
    todo = [
        e
        for e in episodes
        if e.key not in stored
        or (stored[e.key][0] == "failed" and stored[e.key][1] == "infrastructure")
    ]
    progress = Progress(planned=len(episodes), skipped=len(episodes) - len(todo))
    runner = EpisodeRunner(resumable=False)  # resume is per episode: no checkpoints
    limit = asyncio.Semaphore(settings.concurrency)

    def notify() -> None:
        if on_progress is not None:
            on_progress(progress)

    async def one(ep: PlannedEpisode) -> None:
        async with limit:
            progress.in_flight += 1
            notify()
            start = time.monotonic()
            result: EpisodeResult | None = None
            failure: Failure | None
            episode_id = hashlib.sha256(f"{run}|{ep.key}".encode()).hexdigest()[:12]
            try:
                if roles.has_person:
                    failure = Failure(
                        role="infrastructure",
                        kind="config",
                        message="a batch cannot wait for a person",
                    )
                else:
                    ctx = roles.context(
                        ep.scenario,
                        ep.persona,
                        seed=ep.seed,
                        limits=settings.limits,
                        clinician=ep.clinician_index,
                    )
                    outcome = await runner.start(ctx, episode_id=episode_id)
                    assert isinstance(outcome, EpisodeResult)  # no person, so it never waits
                    result = outcome
                    failure = attribute(result, judged=roles.judge is not None)
            except Exception as e:  # one episode's bug never takes down the batch
                failure = Failure(
                    role="infrastructure", kind="internal", message=f"{type(e).__name__}: {e}"
                )
            finally:
                runner.forget(episode_id)
            row = _row(run, ep, result=result, failure=failure, duration_s=time.monotonic() - start)
            store.record(row)
            progress.in_flight -= 1
            if failure is None:
                progress.done += 1
            else:
                progress.failed += 1
            for u in row.usage.values():
                progress.completion_tokens += int(u.get("completion_tokens", 0))
            notify()

    notify()
    with _fewer_collections():
        tasks = []
        for n, e in enumerate(todo):
            tasks.append(asyncio.ensure_future(one(e)))
            if settings.start_rate and n + 1 < min(settings.concurrency, len(todo)):
                await asyncio.sleep(1 / settings.start_rate)
        await asyncio.gather(*tasks)
    return progress
