"""``clinsim scenarios …``, ``clinsim personas …``, ``clinsim import`` and
``clinsim models export-hf``: the scenario and persona libraries, and model utilities."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from simulator.commands.common import DirsOpt, fail, libraries

# ---------------------------------------------------------------- scenarios / personas


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
    from simulator.commands.views import print_scenarios

    print_scenarios(rows)


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
    from simulator.commands.views import print_personas

    print_personas(lib)


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
