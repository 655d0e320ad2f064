"""``clinsim report`` and ``clinsim replay``: reading stored runs back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from simulator.commands.common import DirsOpt, StoreOpt, fail, libraries, open_store, run_info

if TYPE_CHECKING:
    from simulator.store import EpisodeRow

FORMATS = ("table", "json", "csv", "jsonl", "healthbench", "html")


def report(
    run: Annotated[str, typer.Argument(help="Run name (see 'clinsim report --list').")] = "",
    store: StoreOpt = None,
    compare: Annotated[
        str | None, typer.Option(help="Another run: paired differences on shared episodes.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="table, json, csv, jsonl, healthbench or html.")
    ] = "table",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
    prices: Annotated[Path | None, typer.Option(help="Extra price table (YAML).")] = None,
    list_runs: Annotated[bool, typer.Option("--list", help="List the stored runs.")] = False,
    scenarios_dir: DirsOpt = None,
) -> None:
    """Report on a stored run, or export it.

    Scores with confidence intervals by clinician, dimension, task family, axis and persona;
    critical failures, pass^k, failures by role and cost."""
    from simulator.prices import PriceFileError, load_prices
    from simulator.report import build_report, compare_runs

    if fmt not in FORMATS:
        fail(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if out is not None:
        from simulator.config import check_writable

        if why := check_writable(out):
            fail(why)
    try:
        price_table = load_prices(prices)
    except PriceFileError as e:
        fail(str(e))
    with open_store(store, must_exist=True) as st:
        if list_runs or not run:
            for info in st.runs():
                n = len(st.statuses(info.name))
                typer.echo(f"{info.name}\t{info.created_at}\t{n}/{info.planned} episodes")
            return
        info = run_info(st, run)
        rows = st.episodes(run)
        data = build_report(info, rows, price_table)
        comparison = None
        if compare:
            other = run_info(st, compare)
            try:
                comparison = compare_runs(info, rows, other, st.episodes(compare))
            except ValueError as e:
                fail(str(e))
            data["compare"] = comparison
    text = _render(fmt, data, rows, comparison, scenarios_dir)
    if out is not None:
        from simulator.config import write_private

        try:
            write_private(out, text)
        except OSError as e:
            fail(f"could not write --out {out}: {e.strerror or e}; choose another path")
        typer.echo(f"wrote {out}")
    elif fmt == "table":
        return
    else:
        typer.echo(text, nl=False)


def _render(
    fmt: str,
    data: dict[str, Any],
    rows: list[EpisodeRow],
    comparison: dict[str, Any] | None,
    scenarios_dir: list[Path] | None,
) -> str:
    from simulator import report as rep

    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return rep.to_csv(rows)
    if fmt == "jsonl":
        return rep.to_jsonl(rows)
    if fmt == "healthbench":
        lib, _ = libraries(scenarios_dir, None)
        texts = {s.id: {c.id: c.criterion for c in s.rubric} for s in lib}
        return rep.to_healthbench(rows, texts)
    if fmt == "html":
        from simulator.report_html import render_html

        return render_html(data, comparison)
    from simulator.commands.views import print_report_tables

    print_report_tables(data, comparison)
    return ""


def replay(
    run: Annotated[str, typer.Argument(help="Run name.")],
    episode: Annotated[
        str | None, typer.Argument(help="Episode key, episode id, or its number in the list.")
    ] = None,
    store: StoreOpt = None,
    scenarios_dir: DirsOpt = None,
) -> None:
    """Show a stored episode with each verdict beside the turns it cites.

    Without EPISODE, list the run's episodes."""
    from rich.console import Console

    from simulator.commands.views import print_replay

    with open_store(store, must_exist=True) as st:
        run_info(st, run)
        rows = st.episodes(run)
    console = Console()
    if episode is None:
        for n, r in enumerate(rows, 1):
            score = "—" if r.score is None else f"{r.score:.3f}"
            extra = f" failed: {r.failure_role} ({r.failure_kind})" if r.status == "failed" else ""
            typer.echo(f"{n:>4}  {r.key}  score {score}{extra}")
        return
    row = _find_episode(rows, episode)
    result = row.result_obj()
    if result is None:
        fail(f"episode {row.key} failed before it had a transcript: {row.failure_message}")
    lib, _ = libraries(scenarios_dir, None)
    try:
        texts = {c.id: c.criterion for c in lib.get(row.scenario_id).rubric}
    except KeyError:
        texts = {}
    print_replay(console, row, result, texts)


def _find_episode(rows: list[EpisodeRow], wanted: str) -> EpisodeRow:
    if wanted.isdigit() and 1 <= int(wanted) <= len(rows):
        return rows[int(wanted) - 1]
    for r in rows:
        if r.key == wanted or (
            r.result and json.loads(r.result)["transcript"]["episode_id"] == wanted
        ):
            return r
    fail(f"no episode {wanted!r} in this run; run 'clinsim replay RUN' to list them")
