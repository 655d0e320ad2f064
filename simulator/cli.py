"""``clinsim``: the command line. The root only: it creates the typer apps and registers the
commands of ``simulator.commands``, the composition root that wires backends, judges and UI.

Heavy modules (llama_cpp, transformers, torch, textual, langgraph) are imported inside commands
so that ``clinsim --help`` stays fast.
"""

from __future__ import annotations

import typer

from simulator.commands import batch, judging, library, run, runs

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
judge_app = typer.Typer(help="Judges: calibration against human labels.", no_args_is_help=True)
app.add_typer(scenarios_app, name="scenarios")
app.add_typer(personas_app, name="personas")
app.add_typer(models_app, name="models")
app.add_typer(judge_app, name="judge")

app.command()(run.run)
app.command()(run.demo)
app.command()(run.tui)
app.command("batch")(batch.batch)
app.command("report")(runs.report)
app.command("replay")(runs.replay)
app.command("score")(judging.score)
app.command("import")(library.import_)

scenarios_app.command("list")(library.scenarios_list)
scenarios_app.command("show")(library.scenarios_show)
scenarios_app.command("validate")(library.scenarios_validate)
personas_app.command("list")(library.personas_list)
personas_app.command("show")(library.personas_show)
models_app.command("export-hf")(library.models_export_hf)
judge_app.command("calibrate")(judging.calibrate)


def main() -> None:
    """Run the command line. A usage error (an unknown option or command, a flag out of
    range) is one line, ``error: ...``, and exit code 2, like every other bad input."""
    import sys

    try:  # typer carries its own copy of click; older releases use click itself
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover
        from click import exceptions as cx  # type: ignore[no-redef]

    try:
        code = app(standalone_mode=False)
    except cx.NoArgsIsHelpError:  # a group or no command: its help, printed already
        sys.exit(2)
    except cx.UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "clinsim"
        message = " ".join(e.format_message().split()).rstrip(".")
        typer.echo(f"error: {message}; see '{where} --help'", err=True)
        sys.exit(2)
    except cx.ClickException as e:
        typer.echo(f"error: {' '.join(e.format_message().split())}", err=True)
        sys.exit(e.exit_code)
    except typer.Abort:  # Ctrl-C at a prompt
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
