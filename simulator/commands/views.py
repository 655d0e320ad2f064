"""Every rich view of the command line: episode turns as they happen and the verdicts after,
report tables, replay, re-judging and calibration summaries, and progress lines.

Command modules import this module inside their functions, so that ``clinsim --help`` does not
load rich's rendering machinery.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from simulator.schemas import EpisodeResult, Turn, Verdict

if TYPE_CHECKING:
    from judges import Agreement, CalibrationReport
    from personas import PersonaLibrary
    from scenarios import Scenario
    from simulator.batch import Progress
    from simulator.store import EpisodeRow

ROLE_STYLE = {"patient": ("Patient", "cyan"), "clinician": ("Clinician", "green")}


def fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- one episode


def print_episode_start(
    console: Console, scenario_id: str, persona_id: str, clinician_spec: str
) -> None:
    console.rule(f"[bold]{scenario_id}[/] · persona {persona_id} · clinician {clinician_spec}")


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


# ---------------------------------------------------------------- batch progress


def batch_progress_line(name: str, resumed: bool, p: Progress) -> str:
    eta = p.eta_s()
    eta_text = "—" if eta is None else f"{int(eta // 60)}m{int(eta % 60):02d}s"
    return (
        f"[bold]{name}[/]{' (resumed)' if resumed else ''}: "
        f"{p.done} done · [red]{p.failed} failed[/] · {p.in_flight} in flight · "
        f"{p.remaining - p.in_flight} queued · {p.skipped} already stored · "
        f"ETA {eta_text} · {p.tokens_per_s():.0f} tok/s"
    )


@contextmanager
def batch_progress(name: str, resumed: bool) -> Iterator[Callable[[Progress], None]]:
    """A live progress line on stderr while the batch runs; yields the update callback."""
    from rich.live import Live

    console = Console(stderr=True)
    with Live(console=console, refresh_per_second=4, transient=False) as live:

        def update(p: Progress) -> None:
            live.update(batch_progress_line(name, resumed, p))

        yield update


# ---------------------------------------------------------------- report / replay


def print_report_tables(data: dict[str, Any], comparison: dict[str, Any] | None) -> None:
    from simulator.report import estimate_text

    console = Console()
    ci = data["ci"]
    console.print(
        f"[bold]{data['run']}[/]: {data['episodes']} of {data['planned']} episodes stored, "
        f"{data['scored']} scored, {data['failed']} failed "
        f"({', '.join(f'{k} {v}' for k, v in data['failures_by_role'].items()) or 'none'}); "
        f"{data['unscored_verdicts']} unscored verdicts left out"
    )
    if data["score"] is not None:
        ci_text = f" (95% CI {ci[0]:.3f}–{ci[1]:.3f})" if ci[0] is not None else ""
        console.print(f"mean score, clipped to [0, 1]: [bold]{data['score']:.3f}[/]{ci_text}")
    crit = data["critical"]
    console.print(f"critical pass: {crit['passed']} of {crit['evaluated']} episodes")
    for title, key in (
        ("clinician", "by_clinician"),
        ("dimension", "by_dimension"),
        ("task family", "by_family"),
        ("axis", "by_axis"),
        ("persona", "by_persona"),
    ):
        table = Table(title=f"by {title}")
        table.add_column(title)
        table.add_column("n", justify="right")
        table.add_column("mean [95% CI]")
        for k, e in data[key].items():
            table.add_row(k, str(e["n"]), estimate_text(e))
        console.print(table)
    for clin, ks in data["pass_k"].items():
        console.print(
            f"pass^k {clin}: "
            + ", ".join(f"k={k} {v:.3f}" if v is not None else f"k={k} —" for k, v in ks.items())
        )
    for c in data["comparisons"] + (
        [comparison["overall"] | {"a": comparison["a"], "b": comparison["b"]}] if comparison else []
    ):
        console.print(
            f"paired {c['a']} − {c['b']}: n={c['n']}, difference {c['mean_diff']} "
            f"[{c['low']}, {c['high']}]"
        )
    if data["critical_failures"]:
        table = Table(title="critical failures")
        table.add_column("episode")
        table.add_column("criteria")
        for f in data["critical_failures"]:
            table.add_row(f["key"], ", ".join(f["criteria"]))
        console.print(table)
    if data["judge_directed"]:
        console.print(
            "[yellow]judge-directed text[/] in: "
            + "; ".join(f"{j['key']} (turns {j['turns']})" for j in data["judge_directed"])
        )
    if data["failures"]:
        table = Table(title="failed episodes")
        for col in ("episode", "role", "kind", "message"):
            table.add_column(col, overflow="fold")
        for f in data["failures"]:
            table.add_row(f["key"], str(f["role"]), str(f["kind"]), str(f["message"])[:200])
        console.print(table)


def print_replay(
    console: Console, row: EpisodeRow, result: EpisodeResult, texts: dict[str, str]
) -> None:
    t = result.transcript
    console.rule(f"[bold]{escape(row.key)}[/] · {t.termination.value}")
    cited: dict[int, list[Verdict]] = {}
    for v in result.verdicts:
        for i in v.evidence_turns:
            cited.setdefault(i, []).append(v)
    mark = {
        "met": "[green]✓ met[/]",
        "not_met": "[red]✗ not met[/]",
        "unscored": "[yellow]? unscored[/]",
    }

    def verdict_line(v: Verdict) -> str:
        text = escape(texts.get(v.criterion_id, v.criterion_id))
        return f"{mark[v.status]} ({v.points:+d}) {text} — {escape(v.explanation)}"

    for turn in t.turns:
        who = "[cyan]patient[/]" if turn.role == "patient" else "[magenta]clinician[/]"
        flags = f" [yellow]{' '.join(turn.flags)}[/]" if turn.flags else ""
        console.print(f"[{turn.index}] {who}{flags}: {escape(turn.content)}")
        for v in cited.get(turn.index, []):
            console.print(f"      ↳ {verdict_line(v)}")
    uncited = [v for v in result.verdicts if not v.evidence_turns]
    if uncited:
        console.rule("verdicts citing no turn")
        for v in uncited:
            console.print(verdict_line(v))
    score = "—" if result.score is None else f"{result.score:.3f}"
    console.print(
        f"score {score} · critical pass {result.critical_pass} · unscored {result.unscored}"
    )


# ---------------------------------------------------------------- score / calibrate


def echo_scored(src: Path, rejudged: EpisodeResult) -> None:
    """One progress line on stderr per re-judged result."""
    typer.echo(
        f"scored {src.name}: {fmt(rejudged.score)}"
        + (f", {rejudged.unscored} unscored" if rejudged.unscored else ""),
        err=True,
    )


def echo_graded(done: int, total: int) -> None:
    """The calibration's progress, rewritten in place on stderr."""
    typer.echo(f"\rgraded {done}/{total} conversations", err=True, nl=done == total)


def print_rescore_summary(rows: list[dict[str, Any]], as_json: bool, out: Path) -> None:
    from simulator.scoring import aggregate

    est = aggregate([r["score"] for r in rows])
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "episodes": len(rows),
                    "scored": est.n,
                    "score": est.mean,
                    "ci": [est.low, est.high],
                    "unscored_verdicts": sum(r["unscored"] for r in rows),
                    "out": str(out),
                    "results": rows,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    table = Table(title=f"{len(rows)} episodes re-judged")
    for col in ("file", "scenario", "score", "critical", "unscored", "judge-directed"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            Path(r["file"]).name,
            r["scenario_id"],
            fmt(r["score"]),
            {True: "pass", False: "FAIL", None: "—"}[r["critical_pass"]],
            str(r["unscored"]),
            ", ".join(map(str, r["judge_directed_turns"])),
        )
    console = Console()
    console.print(table)
    ci = "" if est.low is None else f" (95% CI {est.low:.3f}–{est.high:.3f})"
    console.print(f"mean score, clipped to [0, 1]: {fmt(est.mean)}{ci} over {est.n} scored")
    console.print(f"written to {out}")


def print_calibration(report: CalibrationReport) -> None:
    table = Table(
        title=f"{report.judge} ({report.mode}) against {report.labels} human labels "
        f"on {report.items} conversations"
    )
    for col in (
        "question",
        "n",
        "accuracy",
        "macro-F1",
        "kappa",
        "unscored",
        "humans: n",
        "acc",
        "kappa",
    ):
        table.add_column(col, justify="right" if col != "question" else "left")

    def row(name: str, j: Agreement, h: Agreement, unscored: int) -> list[str]:
        return [
            name,
            str(j.n),
            fmt(j.accuracy),
            fmt(j.macro_f1),
            fmt(j.kappa),
            str(unscored),
            str(h.n),
            fmt(h.accuracy),
            fmt(h.kappa),
        ]

    for name, f in report.groups.items():
        table.add_row(*row(name, f.judge, f.human, f.unscored))
    o = report.overall
    table.add_row(*row("overall", o.judge, o.human, o.unscored), style="bold")
    console = Console()
    console.print(table)
    console.print(
        "judge: its verdict against each human label; humans: rater against rater on the "
        "conversations two raters labelled (the ceiling)."
    )


# ---------------------------------------------------------------- scenarios / personas


def print_scenarios(rows: list[Scenario]) -> None:
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


def print_personas(lib: PersonaLibrary) -> None:
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
