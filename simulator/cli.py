"""``clinsim``: the command line, and the composition root that wires backends, judges and UI.

Heavy modules (llama_cpp, transformers, torch, textual, langgraph) are imported inside commands
so that ``clinsim --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from simulator import cli_batch, cli_judging
from simulator._cli_common import DirsOpt, SpecOpt, StoreOpt, fail, fail_validation, libraries

if TYPE_CHECKING:
    from simulator.schemas import EpisodeResult

app = typer.Typer(
    name="clinsim",
    help="Simulate patient-facing clinical conversations with an LLM and score them with rubrics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
scenarios_app = typer.Typer(help="Browse and validate scenarios.", no_args_is_help=True)
personas_app = typer.Typer(help="Browse personas.", no_args_is_help=True)
models_app = typer.Typer(help="Model utilities.", no_args_is_help=True)
app.add_typer(scenarios_app, name="scenarios")
app.add_typer(personas_app, name="personas")
app.add_typer(models_app, name="models")
app.add_typer(cli_judging.judge_app, name="judge")

DEMO_SCENARIO = "triage-indigestion-chest-pain"
DEMO_PERSONA = "calm-adult"

# ---------------------------------------------------------------- run / demo


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

    from simulator.config import ConfigFileError, RunConfig, load_run_config, role_config
    from simulator.llm import BackendConfigError

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
    judge_mode = judge_mode or file_cfg.judge_mode or "per-criterion"
    cli_judging.check_mode(judge_mode)
    if cfgs["judge"].spec == "human" and judge_enabled:
        fail("the judge cannot be 'human' in 'clinsim run'; review verdicts in the TUI instead")
    console = Console(stderr=False, highlight=False)
    try:
        result = asyncio.run(
            _episode_async(
                scenario=scenario,
                persona=persona,
                cfgs=cfgs,
                seed=seed if seed is not None else (file_cfg.seed or 0),
                max_turns=max_turns or file_cfg.max_turns,
                min_turns=min_turns or file_cfg.min_turns or 1,
                timeout_s=timeout_s or file_cfg.timeout_s,
                error_budget=file_cfg.error_budget if file_cfg.error_budget is not None else 3,
                judge_enabled=judge_enabled,
                judge_mode=judge_mode,
                console=None if quiet else console,
            )
        )
    except BackendConfigError as e:
        fail(str(e))
    from simulator.config import episode_path, write_private
    from simulator.display import print_result

    out = out or episode_path(scenario.id, result.transcript.episode_id)
    write_private(out, result.model_dump_json(indent=2))
    if not quiet:
        print_result(console, result, {c.id: c.criterion for c in scenario.rubric})
    typer.echo(f"saved: {out}")


async def _episode_async(
    *,
    scenario: Any,
    persona: Any,
    cfgs: dict[str, Any],
    seed: int,
    max_turns: int | None,
    min_turns: int,
    timeout_s: float | None,
    error_budget: int,
    judge_enabled: bool,
    judge_mode: str,
    console: Any,
) -> EpisodeResult:
    from simulator.display import print_turn
    from simulator.episode import EpisodeRunner, PendingInput
    from simulator.graph import EpisodeContext
    from simulator.llm import make_backend

    backends = {role: make_backend(cfg) for role, cfg in cfgs.items() if role != "judge"}
    judge = None
    if judge_enabled:
        judge, judge_backends = cli_judging.build_judge([cfgs["judge"]], mode=judge_mode, seed=seed)
        backends["judge"] = judge_backends[0]
    try:
        for b in backends.values():
            await b.check()
        ctx = EpisodeContext(
            scenario=scenario,
            persona=persona,
            clinician=backends["clinician"],
            patient=backends["patient"],
            clinician_cfg=cfgs["clinician"],
            patient_cfg=cfgs["patient"],
            judge=judge,
            seed=seed,
            max_turns=max_turns,
            min_turns=min_turns,
            timeout_s=timeout_s,
            error_budget=error_budget,
        )
        runner = EpisodeRunner()
        on_turn = (lambda t: print_turn(console, t)) if console is not None else None
        if console is not None:
            console.rule(
                f"[bold]{scenario.id}[/] · persona {persona.id} · "
                f"clinician {cfgs['clinician'].spec}"
            )
        outcome = await runner.start(ctx, on_turn=on_turn)
        while isinstance(outcome, PendingInput):
            text = await asyncio.to_thread(_ask_person, outcome.role)
            outcome = await runner.answer(ctx, outcome.episode_id, text, on_turn=on_turn)
        return outcome
    finally:
        for b in backends.values():
            await b.aclose()


def _ask_person(role: str) -> str | None:
    """A person plays a role at the terminal; an empty line or EOF stops the episode."""
    try:
        line = input(f"[{role}] > ")
    except EOFError:
        return None
    return line or None


@app.command()
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


@app.command()
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
        specs={"clinician": "local:smollm2", "patient": "local:smollm2", "judge": "local:smollm2"},
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


@app.command()
def tui(
    run: Annotated[
        str | None, typer.Argument(help="Open this stored run straight in review.")
    ] = None,
    store: StoreOpt = None,
    clinician: SpecOpt = None,
    patient: SpecOpt = None,
    judge: SpecOpt = None,
    judge_mode: Annotated[str, typer.Option(help="per-criterion or batched.")] = "per-criterion",
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
    from simulator.llm import ModelConfig, make_backend
    from simulator.store import default_store_path
    from tui.app import ClinsimApp
    from tui.services import Services, default_reviewer

    cli_judging.check_mode(judge_mode)
    scen_lib, pers_lib = libraries(scenarios_dir, personas_dir)
    specs = {"clinician": "local:smollm2", "patient": "local:smollm2", "judge": "local:smollm2"}
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

    def make_judge(cfg: ModelConfig, mode: str, seed: int) -> Any:
        return cli_judging.judge_from_configs([cfg], mode=mode, seed=seed)

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


app.command("batch")(cli_batch.batch)
app.command("report")(cli_batch.report)
app.command("replay")(cli_batch.replay)
app.command("score")(cli_judging.score)


# ---------------------------------------------------------------- scenarios / personas


@scenarios_app.command("list")
def scenarios_list(
    dimension: Annotated[str | None, typer.Option(help="SmartServ or SmartCare.")] = None,
    family: Annotated[str | None, typer.Option(help="Task family, e.g. triage.")] = None,
    language: Annotated[str | None, typer.Option(help="Language code, e.g. en or zh.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    scenarios_dir: DirsOpt = None,
) -> None:
    """List scenarios, optionally filtered."""
    from scenarios import Dimension, TaskFamily

    if dimension and dimension.lower() not in {d.value.lower() for d in Dimension}:
        fail(f"unknown dimension {dimension!r}; use one of {', '.join(d.value for d in Dimension)}")
    if family and family not in {f.value for f in TaskFamily}:
        fail(f"unknown family {family!r}; use one of {', '.join(f.value for f in TaskFamily)}")
    lib, _ = libraries(scenarios_dir, None)
    rows = lib.select(dimension=dimension, family=family, language=language)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "id": s.id,
                        "title": s.title,
                        "dimension": s.dimension.value,
                        "family": s.family.value,
                        "specialty": s.specialty,
                        "language": s.language,
                        "red_flag": s.red_flag,
                        "criteria": len(s.rubric),
                        "facts": len(s.case.facts),
                    }
                    for s in rows
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} scenarios")
    for col in ("id", "dimension", "family", "lang", "specialty", "red flag", "title"):
        table.add_column(col, overflow="fold")
    for s in rows:
        table.add_row(
            s.id,
            s.dimension.value,
            s.family.value,
            s.language,
            s.specialty,
            "yes" if s.red_flag else "",
            s.title,
        )
    Console().print(table)


@scenarios_app.command("show")
def scenarios_show(
    scenario_id: Annotated[str, typer.Argument(help="Scenario id.")],
    scenarios_dir: DirsOpt = None,
) -> None:
    """Show one scenario in full: case, hidden facts and rubric (as YAML)."""
    from scenarios.yamlio import dump_yaml

    lib, _ = libraries(scenarios_dir, None)
    try:
        sc = lib.get(scenario_id)
    except KeyError as e:
        fail(str(e.args[0]))
    typer.echo(dump_yaml(sc.model_dump(mode="json")))


@scenarios_app.command("validate")
def scenarios_validate(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files or folders.")],
) -> None:
    """Validate scenario files; exit 0 when all are valid, 2 otherwise."""
    from scenarios import validate_paths

    ok, errors = validate_paths(paths)
    for e in errors:
        typer.echo(f"error: {e}", err=True)
    typer.echo(f"{len(ok)} valid, {len(errors)} invalid")
    if errors:
        raise typer.Exit(2)


@personas_app.command("list")
def personas_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    personas_dir: DirsOpt = None,
) -> None:
    """List personas."""
    _, lib = libraries(None, personas_dir)
    if as_json:
        typer.echo(
            json.dumps([p.model_dump(mode="json") for p in lib], ensure_ascii=False, indent=2)
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(lib)} personas (or sampled:SEED)")
    for col in (
        "id",
        "temperament",
        "literacy",
        "verbosity",
        "recall",
        "confusion",
        "speaker",
        "lang",
    ):
        table.add_column(col)
    for p in lib:
        table.add_row(
            p.id,
            p.temperament.value,
            p.health_literacy.value,
            p.verbosity.value,
            p.recall.value,
            p.confusion.value,
            p.speaker.value + (f" ({p.caregiver_relation})" if p.caregiver_relation else ""),
            p.language,
        )
    Console().print(table)


@personas_app.command("show")
def personas_show(
    persona_id: Annotated[str, typer.Argument(help="Persona id, or sampled:SEED.")],
    personas_dir: DirsOpt = None,
) -> None:
    """Show one persona and how it is rendered into the patient's instructions."""
    from personas import render_style
    from scenarios.yamlio import dump_yaml

    _, lib = libraries(None, personas_dir)
    try:
        p = lib.get(persona_id)
    except KeyError as e:
        fail(str(e.args[0]))
    typer.echo(dump_yaml(p.model_dump(mode="json")))
    typer.echo("# rendered style (en)")
    for line in render_style(p, "en"):
        typer.echo(f"- {line}")


# ---------------------------------------------------------------- import


@app.command("import")
def import_(
    kind: Annotated[str, typer.Argument(help="healthbench, agentclinic or mediq.")],
    file: Annotated[Path, typer.Argument(help="The source JSONL file.")],
    out: Annotated[Path, typer.Option(help="Folder to write scenario YAML files to.")],
) -> None:
    """Import scenarios from HealthBench, AgentClinic or MediQ JSONL into scenario YAML."""
    from scenarios import DataFileError
    from scenarios.importers import IMPORTERS, import_report, write_scenarios

    if kind not in IMPORTERS:
        fail(f"unknown importer {kind!r}; use one of {', '.join(sorted(IMPORTERS))}")
    if not file.is_file():
        fail(f"{file}: no such file")
    try:
        report = import_report(kind, file)
        written = write_scenarios(report.scenarios, out)
    except (DataFileError, ValueError) as e:
        fail(str(e))
    for reason in report.skipped:
        typer.echo(f"skipped: {reason}", err=True)
    typer.echo(
        f"{report.rows} rows, {len(written)} scenarios written to {out}, "
        f"{len(report.skipped)} skipped"
    )


# ---------------------------------------------------------------- models


@models_app.command("export-hf")
def models_export_hf(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the transformers model to.")],
) -> None:
    """Convert the embedded SmolLM2 GGUF into a transformers folder, usable as hf:OUT_DIR."""
    from simulator.llm import BackendConfigError

    try:
        from simulator.llm._hf import export_gguf_to_hf
        from simulator.llm._local import smollm2_path

        export_gguf_to_hf(smollm2_path(), out_dir)
    except BackendConfigError as e:
        fail(str(e))
    except ImportError as e:
        fail(
            f"export needs torch, transformers and gguf ({e.name} missing): "
            "pip install 'clinsim[hf]'"
        )
    typer.echo(f"wrote {out_dir}; use it as --clinician hf:{out_dir}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
