"""``clinsim batch``: scenarios x personas x repeats against clinician models, into the run
store."""

from __future__ import annotations

import asyncio
import fnmatch
import shlex
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from simulator.commands.common import (
    DirsOpt,
    StoreOpt,
    check_timeout,
    fail,
    fail_validation,
    libraries,
    open_store,
)
from simulator.commands.wiring import check_mode, judge_configs, judge_factory
from simulator.defaults import DEFAULT_PERSONA, MAX_PLANNED_EPISODES

if TYPE_CHECKING:
    from collections.abc import Callable

    from personas import Persona, PersonaLibrary
    from scenarios import Scenario, ScenarioLibrary
    from simulator.batch import BatchSettings, PlannedEpisode, Progress
    from simulator.llm import ModelConfig
    from simulator.session import Roles
    from simulator.store import RunStore


def batch(
    scenario: Annotated[
        list[str] | None,
        typer.Option(help="Scenario id or glob (repeatable; default: all that match filters)."),
    ] = None,
    dimension: Annotated[str | None, typer.Option(help="SmartServ or SmartCare.")] = None,
    family: Annotated[str | None, typer.Option(help="Task family, e.g. triage.")] = None,
    language: Annotated[str | None, typer.Option(help="Language code, e.g. en or zh.")] = None,
    persona: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Persona id, glob or sampled:SEED (repeatable; default {DEFAULT_PERSONA})."
        ),
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Trials per (scenario, persona).")] = 1,
    clinician: Annotated[
        list[str] | None,
        typer.Option(help="Clinician model spec; repeat it to compare models in one run."),
    ] = None,
    patient: Annotated[str | None, typer.Option(help="Patient model spec.")] = None,
    judge: Annotated[
        list[str] | None, typer.Option(help="Judge model spec; repeat it for an ensemble.")
    ] = None,
    judge_mode: Annotated[
        str | None, typer.Option(help="per-criterion (default) or batched.")
    ] = None,
    no_judge: Annotated[bool, typer.Option("--no-judge", help="Simulate only.")] = False,
    base_url: Annotated[
        str | None, typer.Option(help="Base URL for openai: specs (else OPENAI_BASE_URL).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Run config file (YAML or TOML).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Episodes in flight.")] = 8,
    start_rate: Annotated[
        float,
        typer.Option(
            min=0,
            help="Episodes started per second while filling up to --concurrency (0: all at "
            "once); spreads the first calls so that they do not all arrive together.",
        ),
    ] = 500.0,
    retries: Annotated[
        int,
        typer.Option(
            min=1,
            max=20,
            help="Attempts per model call on 429, 5xx, timeouts and dropped connections "
            "(1 = no retry); a server's Retry-After is honoured.",
        ),
    ] = 4,
    max_turns: Annotated[int | None, typer.Option(min=1, help="Most clinician turns.")] = None,
    min_turns: Annotated[
        int | None, typer.Option(min=1, help="Ignore earlier end markers.")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Per-episode time limit (s).")] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Base seed; each episode's seed derives from it (default 0)."),
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Run name (default: batch-TIME). Reuse to resume.")
    ] = None,
    store: StoreOpt = None,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Discard a stored run of this name and start it again."),
    ] = False,
    prices: Annotated[Path | None, typer.Option(help="Extra price table (YAML).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    scenarios_dir: DirsOpt = None,
    personas_dir: DirsOpt = None,
) -> None:
    """Run scenarios x personas x repeats against clinician models, into the run store.

    Episodes run concurrently; each finished one is committed on its own. Running the same
    --run again resumes it: only missing episodes and those that failed for infrastructure
    reasons run."""
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from simulator.batch import BatchSettings, manifest, plan
    from simulator.config import (
        ConfigFileError,
        RunConfig,
        load_run_config,
        resolve_judge_mode,
        resolve_limits,
        resolve_seed,
        role_config,
    )
    from simulator.llm import RetryPolicy
    from simulator.prices import PriceFileError, load_prices
    from simulator.store import RunBusy, RunConfigChanged

    check_timeout(timeout)
    try:
        file_cfg = load_run_config(config) if config else RunConfig()
        price_table = load_prices(prices)
    except (ConfigFileError, PriceFileError) as e:
        fail(str(e))
    scen_lib, pers_lib = libraries(
        (scenarios_dir or []) + file_cfg.scenarios_dir, (personas_dir or []) + file_cfg.personas_dir
    )
    scenarios = _select_scenarios(scen_lib, scenario, dimension, family, language)
    personas = _select_personas(pers_lib, persona or [file_cfg.persona or DEFAULT_PERSONA])
    # flags over the config file over the defaults, as for 'clinsim run'
    seed = resolve_seed(seed, file_cfg)
    judge_mode = resolve_judge_mode(judge_mode, file_cfg)
    try:
        clinician_cfgs = [
            role_config("clinician", file_cfg.clinician, {"spec": s, "base_url": base_url})
            for s in (clinician or [None])  # type: ignore[list-item]
        ]
        patient_cfg = role_config(
            "patient", file_cfg.patient, {"spec": patient, "base_url": base_url}
        )
    except ValidationError as e:
        fail_validation(e)
    judge_cfgs = (
        []
        if no_judge
        else judge_configs(
            judge, base_url=base_url, temperature=None, max_tokens=None, from_file=file_cfg.judge
        )
    )
    check_mode(judge_mode)
    if any(c.spec == "human" for c in [*clinician_cfgs, patient_cfg]):
        fail("a batch cannot have a 'human' role; use 'clinsim run' or the TUI to take part")
    planned = len(scenarios) * len(personas) * len(clinician_cfgs) * repeats
    if planned > MAX_PLANNED_EPISODES:
        fail(
            f"this batch plans {planned} episodes ({len(scenarios)} scenarios x {len(personas)} "
            f"personas x {len(clinician_cfgs)} clinicians x {repeats} repeats), more than the "
            f"{MAX_PLANNED_EPISODES} one run may hold; lower --repeats or split the run"
        )
    episodes = plan(
        scenarios,
        personas,
        [c.spec for c in clinician_cfgs],
        repeats=repeats,
        seed=seed,
    )
    settings = BatchSettings(
        concurrency=concurrency,
        start_rate=start_rate or None,
        limits=resolve_limits(
            file_cfg,
            max_turns=max_turns,
            min_turns=min_turns,
            timeout_s=timeout,
            retry=RetryPolicy(attempts=retries),
        ),
    )
    man, config_hash = manifest(
        episodes=episodes,
        clinicians=clinician_cfgs,
        patient=patient_cfg,
        judge=judge_cfgs,
        settings={
            "judge_mode": None if no_judge else judge_mode,
            "repeats": repeats,
            "seed": seed,
            "max_turns": settings.limits.max_turns,
            "min_turns": settings.limits.min_turns,
            "timeout_s": settings.limits.timeout_s,
            "error_budget": settings.limits.error_budget,
        },
    )
    name = run or "batch-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    def open_run() -> tuple[RunStore, bool]:
        """The store and the run in it, opened only once every backend has passed its check,
        so that bad input leaves no store and no empty run behind."""
        st = open_store(store)
        try:
            resumed = st.open_run(
                name, man, config_hash, len(episodes), replace=replace, lease=True
            )
            return st, resumed
        except (RunConfigChanged, RunBusy) as e:
            st.close()
            fail(str(e))

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM ends the batch as Ctrl-C does

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        summary, st = asyncio.run(
            _batch_async(open_run, name, episodes, clinician_cfgs, patient_cfg, judge_cfgs,
                         judge_mode, seed, settings, quiet=quiet)
        )  # fmt: skip
    except KeyboardInterrupt:
        typer.echo(
            "error: interrupted; the finished episodes are stored; resume with: "
            + _resume_command(name),
            err=True,
        )
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    with st:
        rows = st.episodes(name, with_results=False)
    from simulator.report import cost_by_role

    cost = cost_by_role(rows, price_table)
    typer.echo(
        f"run {name}: {summary.done} finished, {summary.failed} failed, {summary.skipped} already "
        f"in the store; {len(rows)} of {len(episodes)} planned episodes stored in {st.path}"
    )
    for role, items in cost.items():
        spent = [c["cost_usd"] for c in items]
        shown = "unpriced" if None in spent else f"${sum(spent):.4f}"
        tokens = sum(c["prompt_tokens"] + c["completion_tokens"] for c in items)
        typer.echo(f"  {role}: {tokens} tokens, {shown}")
    # quoted for a shell: a run name or path with spaces or quotes pastes as it is
    typer.echo(
        f"report: clinsim report {shlex.quote(name)}"
        + (f" --store {shlex.quote(str(store))}" if store else "")
    )


def _resume_command(name: str) -> str:
    """This very command, shell-quoted, naming its run (a generated name included), without
    --replace (which would discard what was just stored)."""
    args = [a for a in sys.argv[1:] if a != "--replace"]
    if "--run" not in args and not any(a.startswith("--run=") for a in args):
        args += ["--run", name]
    return shlex.join(["clinsim", *args])


def _select_scenarios(
    lib: ScenarioLibrary, patterns: list[str] | None, dimension: str | None, family: str | None,
    language: str | None,
) -> list[Scenario]:  # fmt: skip
    from scenarios import Dimension, TaskFamily

    if dimension and dimension.lower() not in {d.value.lower() for d in Dimension}:
        fail(f"unknown dimension {dimension!r}; use one of {', '.join(d.value for d in Dimension)}")
    if family and family not in {f.value for f in TaskFamily}:
        fail(f"unknown family {family!r}; use one of {', '.join(f.value for f in TaskFamily)}")
    pool = lib.select(dimension=dimension, family=family, language=language)
    if patterns:
        chosen: list[Scenario] = []
        for pat in patterns:
            hits = [s for s in pool if fnmatch.fnmatchcase(s.id, pat)]
            if not hits:
                fail(
                    f"no scenario matches {pat!r} (with the filters given); see "
                    "'clinsim scenarios list'"
                )
            chosen += [s for s in hits if s not in chosen]
        pool = chosen
    if not pool:
        fail("no scenario matches the filters given; see 'clinsim scenarios list'")
    return pool


def _select_personas(lib: PersonaLibrary, patterns: list[str]) -> list[Persona]:
    chosen: list[Persona] = []
    for pat in patterns:
        if pat.startswith("sampled:") or not any(ch in pat for ch in "*?["):
            try:
                p = lib.get(pat)
            except KeyError as e:
                fail(str(e.args[0]))
            hits = [p]
        else:
            hits = [p for p in lib if fnmatch.fnmatchcase(p.id, pat)]
            if not hits:
                fail(f"no persona matches {pat!r}; see 'clinsim personas list'")
        chosen += [p for p in hits if p not in chosen]
    return chosen


async def _batch_async(
    open_run: Callable[[], tuple[RunStore, bool]],
    name: str,
    episodes: list[PlannedEpisode],
    clinician_cfgs: list[ModelConfig],
    patient_cfg: ModelConfig,
    judge_cfgs: list[ModelConfig],
    judge_mode: str,
    seed: int,
    settings: BatchSettings,
    *,
    quiet: bool,
) -> tuple[Progress, RunStore]:
    from simulator.batch import run_batch
    from simulator.llm import BackendConfigError, make_backend
    from simulator.session import Roles

    try:
        roles = Roles.build(
            clinician_cfgs,
            patient_cfg,
            judge_cfgs,
            make_backend=make_backend,
            make_judge=judge_factory(judge_mode),
            seed=seed,
            retry=settings.limits.retry,
            # as many calls in flight per role as episodes: each waits on at most one at a time
            calls=settings.concurrency,
        )
    except BackendConfigError as e:
        fail(str(e))
    async with roles:
        try:
            # a server that fails now fails its episodes, attributed; the run goes on
            await roles.check(tolerate_server_faults=True)
        except BackendConfigError as e:
            fail(str(e))
        store, resumed = open_run()
        try:
            if quiet:
                progress = await run_batch(store, name, episodes, roles, settings)
            else:
                progress = await _with_progress(store, name, episodes, roles, settings, resumed)
        except BaseException:
            store.release(name)
            store.close()
            raise
        store.release(name)
        return progress, store


async def _with_progress(
    store: RunStore,
    name: str,
    episodes: list[PlannedEpisode],
    roles: Roles,
    settings: BatchSettings,
    resumed: bool,
) -> Progress:
    from simulator.batch import run_batch
    from simulator.commands.views import batch_progress

    with batch_progress(name, resumed) as update:
        return await run_batch(store, name, episodes, roles, settings, on_progress=update)
