"""``clinsim run``, ``clinsim demo`` and ``clinsim tui``: one episode at the terminal, and the
terminal UI."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from simulator.commands.common import (
    DirsOpt,
    SpecOpt,
    StoreOpt,
    check_timeout,
    fail,
    fail_validation,
    libraries,
)
from simulator.commands.wiring import check_mode, judge_factory, judge_from_configs
from simulator.defaults import (
    DEFAULT_JUDGE_MODE,
    DEFAULT_PERSONA,
    DEFAULT_SCENARIO,
    DEFAULT_SPEC,
)

if TYPE_CHECKING:
    from rich.console import Console

    from judges import EnsembleJudge, RubricJudge
    from personas import Persona
    from scenarios import Scenario
    from simulator.config import EpisodeLimits
    from simulator.llm import ChatBackend, ModelConfig
    from simulator.schemas import EpisodeResult, Turn

DEMO_SCENARIO = DEFAULT_SCENARIO
DEMO_PERSONA = DEFAULT_PERSONA
EMBEDDED = {"clinician": DEFAULT_SPEC, "patient": DEFAULT_SPEC, "judge": DEFAULT_SPEC}


def _run_episode(
    *,
    config_path: Path | None,
    scenario_id: str | None,
    persona_id: str | None,
    specs: dict[str, str | None],
    base_url: str | None,
    max_turns: int | None,
    min_turns: int | None,
    seed: int | None,
    timeout_s: float | None,
    out: Path | None,
    judge_enabled: bool,
    scenarios_dir: list[Path] | None,
    personas_dir: list[Path] | None,
    quiet: bool,
    judge_mode: str | None = None,
) -> None:
    from pydantic import ValidationError
    from rich.console import Console

    from simulator.config import (
        ConfigFileError,
        RunConfig,
        check_writable,
        load_run_config,
        resolve_judge_mode,
        resolve_limits,
        resolve_seed,
        role_config,
    )
    from simulator.llm import BackendConfigError

    check_timeout(timeout_s)
    if out is not None and (why := check_writable(out)):
        fail(why)
    try:
        file_cfg = load_run_config(config_path) if config_path else RunConfig()
    except ConfigFileError as e:
        fail(str(e))
    scen_lib, pers_lib = libraries(
        (scenarios_dir or []) + file_cfg.scenarios_dir, (personas_dir or []) + file_cfg.personas_dir
    )
    scenario_id = scenario_id or file_cfg.scenario or DEMO_SCENARIO
    persona_id = persona_id or file_cfg.persona or DEMO_PERSONA
    try:
        scenario = scen_lib.get(scenario_id)
        persona = pers_lib.get(persona_id)
    except KeyError as e:
        fail(str(e.args[0]))
    try:
        cfgs = {
            role: role_config(
                role,
                getattr(file_cfg, role),
                {"spec": specs[role], "base_url": base_url if base_url else None},
            )
            for role in ("clinician", "patient", "judge")
        }
    except ValidationError as e:
        fail_validation(e)
    judge_mode = resolve_judge_mode(judge_mode, file_cfg)
    check_mode(judge_mode)
    if cfgs["judge"].spec == "human" and judge_enabled:
        fail("the judge cannot be 'human' in 'clinsim run'; review verdicts in the TUI instead")
    console = Console(stderr=False, highlight=False)
    try:
        result = asyncio.run(
            _episode_async(
                scenario=scenario,
                persona=persona,
                cfgs=cfgs,
                seed=resolve_seed(seed, file_cfg),
                limits=resolve_limits(
                    file_cfg, max_turns=max_turns, min_turns=min_turns, timeout_s=timeout_s
                ),
                judge_enabled=judge_enabled,
                judge_mode=judge_mode,
                console=None if quiet else console,
            )
        )
    except BackendConfigError as e:
        fail(str(e))
    from simulator.commands.views import print_result
    from simulator.config import episode_path, write_private

    text = result.model_dump_json(indent=2)
    saved = episode_path(scenario.id, result.transcript.episode_id)
    try:
        write_private(out or saved, text)
    except OSError as e:
        if out is None:
            fail(f"could not save the result to {saved}: {e.strerror or e}")
        write_private(saved, text)  # never lose the episode just simulated
        fail(f"could not write --out {out} ({e.strerror or e}); the result was saved to {saved}")
    out = out or saved
    if not quiet:
        print_result(console, result, {c.id: c.criterion for c in scenario.rubric})
    if result.transcript.termination.value == "timeout":
        typer.echo(
            "note: the time limit ended the episode before the conversation did; it is not "
            "judged (a slow server or a tight --timeout is not the model's score)",
            err=True,
        )
    typer.echo(f"saved: {out}")


async def _episode_async(
    *,
    scenario: Scenario,
    persona: Persona,
    cfgs: dict[str, ModelConfig],
    seed: int,
    limits: EpisodeLimits,
    judge_enabled: bool,
    judge_mode: str,
    console: Console | None,
) -> EpisodeResult:
    from simulator.commands.views import print_episode_start, print_turn
    from simulator.episode import EpisodeRunner, PendingInput
    from simulator.llm import make_backend
    from simulator.session import EpisodeObserver, Roles

    class TurnPrinter(EpisodeObserver):
        """Prints each turn as it is taken."""

        def __init__(self, console: Console) -> None:
            self.console = console

        def on_turn(self, turn: Turn) -> None:
            print_turn(self.console, turn)

    roles = Roles.build(
        [cfgs["clinician"]],
        cfgs["patient"],
        [cfgs["judge"]] if judge_enabled else [],
        make_backend=make_backend,
        make_judge=judge_factory(judge_mode),
        seed=seed,
    )
    async with roles:
        await roles.check()
        ctx = roles.context(
            scenario,
            persona,
            seed=seed,
            limits=limits,
            observer=TurnPrinter(console) if console is not None else None,
        )
        runner = EpisodeRunner()
        if console is not None:
            print_episode_start(console, scenario.id, persona.id, cfgs["clinician"].spec)
        outcome = await runner.start(ctx)
        while isinstance(outcome, PendingInput):
            text = await asyncio.to_thread(_ask_person, outcome.role)
            outcome = await runner.answer(ctx, outcome.episode_id, text)
        return outcome


def _ask_person(role: str) -> str | None:
    """A person plays a role at the terminal; an empty line or EOF stops the episode."""
    try:
        line = input(f"[{role}] > ")
    except EOFError:
        return None
    return line or None


def run(
    scenario: Annotated[
        str | None, typer.Option(help="Scenario id (see 'clinsim scenarios list').")
    ] = None,
    persona: Annotated[str | None, typer.Option(help="Persona id, or sampled:SEED.")] = None,
    clinician: SpecOpt = None,
    patient: SpecOpt = None,
    judge: SpecOpt = None,
    base_url: Annotated[
        str | None, typer.Option(help="Base URL for openai: specs (else OPENAI_BASE_URL).")
    ] = None,
    max_turns: Annotated[
        int | None, typer.Option(min=1, help="Most clinician turns (default: the scenario's).")
    ] = None,
    min_turns: Annotated[
        int | None,
        typer.Option(
            min=1, help="Ignore end markers before this many clinician turns (default 1)."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Episode seed (default 0).")] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Whole-episode time limit in seconds.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the result JSON here.")] = None,
    config: Annotated[Path | None, typer.Option(help="Run config file (YAML or TOML).")] = None,
    no_judge: Annotated[
        bool, typer.Option("--no-judge", help="Simulate only; judge later with 'clinsim score'.")
    ] = False,
    judge_mode: Annotated[
        str | None,
        typer.Option(help="per-criterion (default) or batched: one grader call per rubric."),
    ] = None,
    scenarios_dir: DirsOpt = None,
    personas_dir: DirsOpt = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the saved path.")
    ] = False,
) -> None:
    """Run one episode: a simulated patient talks with the clinician model; a judge scores it.

    The result JSON is written to --out, or to $CLINSIM_HOME/episodes/ (default
    ~/.local/share/clinsim/episodes/), readable by you only.
    """
    _run_episode(
        config_path=config,
        scenario_id=scenario,
        persona_id=persona,
        specs={"clinician": clinician, "patient": patient, "judge": judge},
        base_url=base_url,
        max_turns=max_turns,
        min_turns=min_turns,
        seed=seed,
        timeout_s=timeout,
        out=out,
        judge_enabled=not no_judge,
        scenarios_dir=scenarios_dir,
        personas_dir=personas_dir,
        quiet=quiet,
        judge_mode=judge_mode,
    )


def demo(
    max_turns: Annotated[int, typer.Option(min=1, help="Most clinician turns.")] = 3,
    seed: Annotated[int, typer.Option(help="Episode seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the result JSON here.")] = None,
) -> None:
    """A demo episode on the embedded model (local:smollm2 in every role; no network)."""
    _run_episode(
        config_path=None,
        scenario_id=DEMO_SCENARIO,
        persona_id=DEMO_PERSONA,
        specs=dict(EMBEDDED),
        base_url=None,
        max_turns=max_turns,
        min_turns=2,
        seed=seed,
        timeout_s=None,
        out=out,
        judge_enabled=True,
        scenarios_dir=None,
        personas_dir=None,
        quiet=False,
    )


def tui(
    run: Annotated[
        str | None, typer.Argument(help="Open this stored run straight in review.")
    ] = None,
    store: StoreOpt = None,
    clinician: SpecOpt = None,
    patient: SpecOpt = None,
    judge: SpecOpt = None,
    judge_mode: Annotated[str, typer.Option(help="per-criterion or batched.")] = DEFAULT_JUDGE_MODE,
    reviewer: Annotated[
        str | None,
        typer.Option(help="Your name on saved reviews (default $CLINSIM_REVIEWER, else $USER)."),
    ] = None,
    scenarios_dir: DirsOpt = None,
    personas_dir: DirsOpt = None,
) -> None:
    """The terminal UI: browse scenarios, run, fork and review episodes, follow batches.

    Watch an episode or play the patient or the clinician; review a stored run's verdicts
    (saved as labels for 'clinsim judge calibrate --run'). Keys are shown in the footer;
    ctrl+q quits."""
    from simulator.llm import make_backend
    from simulator.store import default_store_path
    from tui.app import ClinsimApp
    from tui.services import Services, default_reviewer

    check_mode(judge_mode)
    scen_lib, pers_lib = libraries(scenarios_dir, personas_dir)
    specs = dict(EMBEDDED)
    for role, given in (("clinician", clinician), ("patient", patient), ("judge", judge)):
        if given:
            specs[role] = given
    extra: list[str] = []
    for d in scenarios_dir or []:
        extra += ["--scenarios-dir", str(d)]
    for d in personas_dir or []:
        extra += ["--personas-dir", str(d)]
    store_path = store or default_store_path()
    if run is not None and not store_path.is_file():
        fail(f"no run store at {store_path}; run 'clinsim batch' first or pass --store")

    def make_judge(
        cfg: ModelConfig, mode: str, seed: int
    ) -> tuple[RubricJudge | EnsembleJudge, list[ChatBackend]]:
        return judge_from_configs([cfg], mode=mode, seed=seed)

    services = Services(
        scenarios=scen_lib,
        personas=pers_lib,
        store_path=store_path,
        make_backend=make_backend,
        make_judge=make_judge,
        specs=specs,
        judge_mode=judge_mode,
        reviewer=reviewer or default_reviewer(),
        extra_batch_args=extra,
    )
    ClinsimApp(services, run=run).run()
