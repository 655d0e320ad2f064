"""Pieces the command modules share: one-line errors, library loading, common options and
opening the run store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from pydantic import ValidationError

    from personas import PersonaLibrary
    from scenarios import ScenarioLibrary
    from simulator.store import RunInfo, RunStore

SpecOpt = Annotated[
    str | None, typer.Option(help="local:smollm2, hf:PATH, openai:MODEL, scripted:FILE or human.")
]
DirsOpt = Annotated[
    list[Path] | None, typer.Option(help="Extra folder of YAML files (repeatable).")
]

StoreOpt = Annotated[
    Path | None,
    typer.Option(help="Run store (SQLite). Default: $CLINSIM_HOME/runs.sqlite."),
]


def fail(message: str) -> NoReturn:
    """Bad input: one line on stderr, exit code 2. A message that spans lines (a library's
    error text) is joined into one."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(2)


def check_timeout(seconds: float | None) -> None:
    """``--timeout``: at least MIN_TIMEOUT_S seconds, and finite. Zero, negative, nan and
    inf make no sense, and a limit shorter than any model call ends every episode before its
    first turn."""
    import math

    from simulator.defaults import MIN_TIMEOUT_S

    if seconds is not None and not (math.isfinite(seconds) and seconds >= MIN_TIMEOUT_S):
        fail(f"--timeout must be a number of seconds, at least {MIN_TIMEOUT_S:g}, got {seconds:g}")


def fail_validation(e: ValidationError) -> NoReturn:
    """A pydantic error on flags as one line: the field path and what is wrong with it."""
    err = e.errors()[0]
    fail(f"{'.'.join(map(str, err['loc']))}: {err['msg'].removeprefix('Value error, ')}")


def libraries(
    scenarios_dir: list[Path] | None, personas_dir: list[Path] | None
) -> tuple[ScenarioLibrary, PersonaLibrary]:
    from personas import PersonaLibrary
    from scenarios import DataFileError, ScenarioLibrary

    try:
        return (
            ScenarioLibrary.load(scenarios_dir or []),
            PersonaLibrary.load(personas_dir or []),
        )
    except DataFileError as e:
        fail(str(e))


def open_store(path: Path | None, *, must_exist: bool = False) -> RunStore:
    """The run store; ``must_exist``: a command that only reads, which opens it read-only
    (it never changes a byte of it)."""
    from simulator.store import RunStore, StoreError, default_store_path

    target = path or default_store_path()
    if must_exist and not target.is_file():
        fail(f"no run store at {target}; run 'clinsim batch' first or pass --store")
    try:
        return RunStore(target, readonly=must_exist)
    except StoreError as e:
        fail(str(e))


def run_info(store: RunStore, name: str) -> RunInfo:
    info = store.run(name)
    if info is None:
        known = ", ".join(r.name for r in store.runs()) or "none"
        fail(f"no run {name!r} in {store.path} (runs: {known})")
    return info
