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
    app()


if __name__ == "__main__":
    main()
