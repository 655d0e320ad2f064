"""Printing episodes with rich: turns as they happen, then the verdicts and the score."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from simulator.schemas import EpisodeResult, Turn

ROLE_STYLE = {"patient": ("Patient", "cyan"), "clinician": ("Clinician", "green")}


def print_turn(console: Console, turn: Turn) -> None:
    label, colour = ROLE_STYLE[turn.role]
    title = f"[bold {colour}]{turn.index}. {label}[/]"
    notes: list[str] = []
    if turn.source != "model":
        notes.append(turn.source)
    if turn.disclosed:
        notes.append("disclosed: " + ", ".join(turn.disclosed))
    notes += turn.flags
    console.print(
        Panel(
            Text(turn.content),
            title=title,
            title_align="left",
            subtitle=" · ".join(notes) or None,
            subtitle_align="right",
            border_style=colour,
            padding=(0, 1),
        )
    )


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def print_result(console: Console, result: EpisodeResult, criteria_text: dict[str, str]) -> None:
    t = result.transcript
    console.print(
        f"[bold]Termination:[/] {t.termination.value}   "
        f"[bold]turns:[/] {len(t.turns)}   [bold]facts disclosed:[/] "
        f"{len(t.disclosed)}"
    )
    for e in t.errors:
        console.print(f"[red]error[/] ({e.role}, {e.kind}) after turn {e.after_turn}: {e.message}")
    if not result.verdicts:
        console.print("[dim]Not judged.[/]")
        return
    table = Table(title="Rubric verdicts", show_lines=False, expand=True)
    table.add_column("criterion", overflow="fold", ratio=4)
    table.add_column("pts", justify="right", width=4)
    table.add_column("verdict", width=9)
    table.add_column("evidence", width=9)
    table.add_column("explanation", overflow="fold", ratio=4)
    status_style = {"met": "green", "not_met": "yellow", "unscored": "red"}
    for v in result.verdicts:
        table.add_row(
            f"[bold]{v.criterion_id}[/] {_short(criteria_text.get(v.criterion_id, ''))}",
            str(v.points),
            f"[{status_style[v.status]}]{v.status}[/]",
            ",".join(map(str, v.evidence_turns)) or "-",
            v.explanation,
        )
    console.print(table)
    score = "n/a" if result.score is None else f"{result.score:.3f}"
    crit = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "n/a"}[result.critical_pass]
    console.print(
        f"[bold]Score:[/] {score}   [bold]critical:[/] {crit}   "
        f"[bold]unscored:[/] {result.unscored}"
    )
