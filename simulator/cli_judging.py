"""``clinsim score`` and ``clinsim judge calibrate``: judging saved transcripts and measuring
judges against human labels. Part of the composition root (wires judges to backends)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from simulator._cli_common import DirsOpt, StoreOpt, fail, fail_validation, libraries

if TYPE_CHECKING:
    from judges import EnsembleJudge, JudgeMode, RubricJudge
    from scenarios import Scenario
    from simulator.llm import ChatBackend, ModelConfig, RetryPolicy
    from simulator.schemas import EpisodeResult

judge_app = typer.Typer(help="Judges: calibration against human labels.", no_args_is_help=True)

JudgeSpecsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--judge",
        help="Judge model spec (default local:smollm2). Repeat it for an ensemble: the verdict "
        "per criterion is the majority.",
    ),
]
ModeOpt = Annotated[
    str,
    typer.Option(
        help="per-criterion: one grader call per criterion (HealthBench); batched: one call "
        "per rubric (cheaper)."
    ),
]
BaseUrlOpt = Annotated[
    str | None, typer.Option(help="Base URL for openai: judges (else OPENAI_BASE_URL).")
]
TemperatureOpt = Annotated[
    float | None, typer.Option(min=0.0, max=2.0, help="Judge sampling temperature (default 0).")
]
MaxTokensOpt = Annotated[
    int | None, typer.Option(min=1, help="Judge reply budget per criterion (default 256).")
]


def judge_configs(
    specs: list[str] | None,
    *,
    base_url: str | None,
    temperature: float | None,
    max_tokens: int | None,
    from_file: ModelConfig | None = None,
) -> list[ModelConfig]:
    """The judge role's settings, once per spec given (the config file's or default if none)."""
    from pydantic import ValidationError

    from simulator.config import role_config

    overrides: dict[str, Any] = {
        "base_url": base_url,
        "temperature": temperature,
        "max_tokens": max_tokens,
    }
    try:
        return [
            role_config("judge", from_file, {**overrides, "spec": spec})
            for spec in (specs or [None])  # type: ignore[list-item]
        ]
    except ValidationError as e:
        fail_validation(e)


def check_mode(mode: str) -> None:
    """Bad --mode / --judge-mode: one line, exit 2."""
    from judges import JUDGE_MODES

    if mode not in JUDGE_MODES:
        fail(f"unknown judge mode {mode!r}; use {' or '.join(JUDGE_MODES)}")


def judge_from_configs(
    cfgs: list[ModelConfig],
    *,
    mode: str,
    seed: int,
    retry: RetryPolicy | None = None,
    calls: int | None = None,
) -> tuple[RubricJudge | EnsembleJudge, list[ChatBackend]]:
    """One rubric judge, or an ensemble of several; with the backends to close afterwards.
    ``calls``: grader calls in flight per judge model unless its config sets ``concurrency``
    (a batch passes its episodes in flight). Bad input raises (BackendConfigError for a spec,
    ValueError for a mode); the TUI shows it."""
    from judges import EnsembleJudge, RubricJudge
    from simulator.llm import calls_limit, make_backend

    if any(c.spec == "human" for c in cfgs):
        raise ValueError("the judge cannot be 'human' here; review verdicts in the TUI instead")
    backends = [make_backend(c, calls=calls) for c in cfgs]
    members = [
        # members of an ensemble get distinct seeds, so one spec repeated at temperature > 0
        # samples independent votes
        RubricJudge(
            b,
            c,
            mode=cast("JudgeMode", mode),
            seed=seed + 7919 * n,
            concurrency=calls_limit(c, calls),
            retry=retry,
        )
        for n, (b, c) in enumerate(zip(backends, cfgs, strict=True))
    ]
    judge: RubricJudge | EnsembleJudge = members[0] if len(members) == 1 else EnsembleJudge(members)
    return judge, backends


def build_judge(
    cfgs: list[ModelConfig],
    *,
    mode: str,
    seed: int,
    retry: RetryPolicy | None = None,
    calls: int | None = None,
) -> tuple[RubricJudge | EnsembleJudge, list[ChatBackend]]:
    """``judge_from_configs`` for a command: bad input is one line and exit code 2."""
    from simulator.llm import BackendConfigError

    check_mode(mode)
    try:
        return judge_from_configs(cfgs, mode=mode, seed=seed, retry=retry, calls=calls)
    except (BackendConfigError, ValueError) as e:
        fail(str(e))


async def _checked(backends: list[ChatBackend]) -> None:
    from simulator.llm import BackendConfigError, BackendError

    for b in backends:
        try:
            await b.check()
        except (BackendConfigError, BackendError) as e:
            fail(str(e))


# ---------------------------------------------------------------- score


def _results(paths: list[Path], store: Path | None) -> list[tuple[Path, EpisodeResult]]:
    """Results from files, folders of them, or stored runs (a name that is not a path)."""
    out: list[tuple[Path, EpisodeResult]] = []
    for p in paths:
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.json") if q.is_file())
            if not found:
                fail(f"{p}: no result files (*.json) in this folder")
            out.extend((f, _load_result(f)) for f in found)
        elif p.is_file():
            out.append((p, _load_result(p)))
        else:
            out.extend(_run_results(str(p), store))
    return out


def _run_results(name: str, store: Path | None) -> list[tuple[Path, EpisodeResult]]:
    from simulator.store import RunStore, StoreError, default_store_path

    target = store or default_store_path()
    if not target.is_file():
        fail(f"{name}: no such file or folder, and no run store at {target} to find a run in")
    try:
        with RunStore(target) as st:
            if st.run(name) is None:
                fail(f"{name}: no such file, folder, or run in {target}")
            rows = [r for r in st.episodes(name) if r.result is not None]
    except StoreError as e:
        fail(str(e))
    return [(Path(_safe(name)) / f"{_safe(r.key)}.json", r.result_obj()) for r in rows]


def _safe(text: str) -> str:
    """A file name from a run name or episode key."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


# Largest result file read (bytes), checked before reading: a 100-turn transcript at the
# longest replies is far below it.
MAX_RESULT_BYTES = 50_000_000


def load_result(path: Path) -> EpisodeResult:
    """A result file as written by ``clinsim run``; DataFileError (one line naming the file,
    and the line or field where known) for anything else."""
    import re

    from pydantic import ValidationError

    from scenarios.yamlio import DataFileError, read_text
    from simulator.schemas import EpisodeResult

    expected = "expected a result JSON file written by 'clinsim run'"
    text = read_text(path, limit=MAX_RESULT_BYTES, hint=expected)
    if not text.strip():
        raise DataFileError(path, f"file is empty; {expected}")
    try:
        return EpisodeResult.model_validate_json(text)
    except ValidationError as e:
        err = e.errors()[0]
        msg = str(err["msg"])
        if err["type"] == "json_invalid":
            at = re.search(r"at line (\d+)", msg)
            raise DataFileError(
                path,
                f"not a clinsim result: {msg}; {expected}",
                line=int(at.group(1)) if at else None,
            ) from None
        where = ".".join(map(str, err["loc"])) or "(top level)"
        raise DataFileError(path, f"not a clinsim result: {where}: {msg}; {expected}") from None


def _load_result(path: Path) -> EpisodeResult:
    from scenarios.yamlio import DataFileError

    try:
        return load_result(path)
    except DataFileError as e:
        fail(str(e))


def score(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Result JSON files, folders of them, or run names in the store."),
    ],
    judge: JudgeSpecsOpt = None,
    mode: ModeOpt = "per-criterion",
    base_url: BaseUrlOpt = None,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    seed: Annotated[int, typer.Option(help="Judge seed.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the re-judged results (default $CLINSIM_HOME/scored/TIME)."),
    ] = None,
    allow_changed_rubric: Annotated[
        bool,
        typer.Option(
            "--allow-changed-rubric",
            help="Judge even when the scenario changed since the episode was run.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    store: Annotated[
        Path | None,
        typer.Option(help="Run store for run names (default $CLINSIM_HOME/runs.sqlite)."),
    ] = None,
    scenarios_dir: DirsOpt = None,
) -> None:
    """Re-judge saved results (files, folders or stored runs) without re-simulating.

    Each result is judged against its scenario's current rubric and written, with the new
    verdicts, to --out (readable by you only). The judge-directed-text check runs again too.
    """
    from simulator.record import scenario_hash

    results = _results(paths, store)
    files = [f for f, _ in results]
    scen_lib, _ = libraries(scenarios_dir, None)
    scenarios: dict[str, Scenario] = {}
    for f, r in results:
        sid = r.transcript.scenario_id
        try:
            sc = scen_lib.get(sid)
        except KeyError:
            fail(f"{f}: scenario {sid!r} not found; pass its folder with --scenarios-dir")
        if scenario_hash(sc) != r.transcript.scenario_hash and not allow_changed_rubric:
            fail(
                f"{f}: scenario {sid!r} changed since this episode was run (hash differs); "
                "pass --allow-changed-rubric to judge it against the current rubric"
            )
        scenarios[sid] = sc
    cfgs = judge_configs(judge, base_url=base_url, temperature=temperature, max_tokens=max_tokens)
    the_judge, backends = build_judge(cfgs, mode=mode, seed=seed)
    if out is None:
        from simulator.config import data_home

        out = data_home() / "scored" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if out.exists() and not out.is_dir():
        fail(f"{out}: exists and is not a folder; --out takes a folder")
    targets = _out_names(files, out)
    summary = asyncio.run(
        _score_all(the_judge, backends, results, scenarios, targets, quiet=as_json)
    )
    _print_summary(summary, as_json, out)


def _out_names(files: list[Path], out: Path) -> list[Path]:
    seen: dict[str, int] = {}
    names = []
    for f in files:
        n = seen.get(f.name, 0)
        seen[f.name] = n + 1
        names.append(out / (f.name if n == 0 else f"{f.stem}-{n}{f.suffix}"))
    return names


async def _score_all(
    judge: RubricJudge | EnsembleJudge,
    backends: list[ChatBackend],
    results: list[tuple[Path, EpisodeResult]],
    scenarios: dict[str, Scenario],
    targets: list[Path],
    *,
    quiet: bool,
) -> list[dict[str, Any]]:
    from simulator.config import write_private
    from simulator.record import flag_judge_directed

    await _checked(backends)
    limit = asyncio.Semaphore(4)
    rows: list[dict[str, Any]] = []

    async def one(src: Path, result: EpisodeResult, dst: Path) -> None:
        transcript = flag_judge_directed(result.transcript)
        async with limit:
            output = await judge.judge(scenarios[transcript.scenario_id], transcript)
        rejudged = result.model_copy(update={"transcript": transcript}).with_judgement(output)
        write_private(dst, rejudged.model_dump_json(indent=2))  # written as soon as judged
        row = {
            "file": str(src),
            "out": str(dst),
            "scenario_id": transcript.scenario_id,
            "score": rejudged.score,
            "critical_pass": rejudged.critical_pass,
            "unscored": rejudged.unscored,
            "criteria": len(rejudged.verdicts),
            "judge_directed_turns": transcript.judge_directed_turns,
            "agreement": rejudged.agreement,
            "disputed": rejudged.disputed,
        }
        rows.append(row)
        if not quiet:
            typer.echo(
                f"scored {src.name}: {_fmt(rejudged.score)}"
                + (f", {rejudged.unscored} unscored" if rejudged.unscored else ""),
                err=True,
            )

    try:
        await asyncio.gather(*(one(f, r, t) for (f, r), t in zip(results, targets, strict=True)))
    finally:
        for b in backends:
            await b.aclose()
    order = {str(f): n for n, (f, _) in enumerate(results)}
    return sorted(rows, key=lambda r: order[r["file"]])


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _print_summary(rows: list[dict[str, Any]], as_json: bool, out: Path) -> None:
    from judges import aggregate

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
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} episodes re-judged")
    for col in ("file", "scenario", "score", "critical", "unscored", "judge-directed"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            Path(r["file"]).name,
            r["scenario_id"],
            _fmt(r["score"]),
            {True: "pass", False: "FAIL", None: "—"}[r["critical_pass"]],
            str(r["unscored"]),
            ", ".join(map(str, r["judge_directed_turns"])),
        )
    console = Console()
    console.print(table)
    ci = "" if est.low is None else f" (95% CI {est.low:.3f}–{est.high:.3f})"
    console.print(f"mean score, clipped to [0, 1]: {_fmt(est.mean)}{ci} over {est.n} scored")
    console.print(f"written to {out}")


# ---------------------------------------------------------------- calibrate


@judge_app.command("calibrate")
def calibrate(
    labels: Annotated[
        Path | None,
        typer.Option(help="Human labels: CRAFT-MD expert-label JSONL, or generic JSONL."),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(
            "--run", help="Use the reviews saved in the TUI for this stored run as the labels."
        ),
    ] = None,
    store: StoreOpt = None,
    judge: JudgeSpecsOpt = None,
    mode: ModeOpt = "per-criterion",
    base_url: BaseUrlOpt = None,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    seed: Annotated[int, typer.Option(help="Judge seed.")] = 0,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Use only the first N conversations.")
    ] = None,
    save: Annotated[
        Path | None, typer.Option(help="Write every judge verdict beside the human labels (JSONL).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Measure a judge against human labels (accuracy, macro-F1, Cohen's kappa).

    Per question (per axis for --run) and overall, beside the raters' agreement with each other
    (the ceiling). Labels come from a file (--labels) or from TUI reviews of a run (--run)."""
    from judges import calibrate as run_calibration
    from judges import labels_from_records, load_labels
    from scenarios import DataFileError

    if (labels is None) == (run is None):
        fail("give either --labels FILE or --run NAME (reviews saved in the TUI)")
    try:
        if labels is not None:
            labelset = load_labels(labels).limited(limit)
        else:
            assert run is not None
            source, records = review_records(run, store)
            labelset = labels_from_records(source, records).limited(limit)
    except DataFileError as e:
        fail(str(e))
    cfgs = judge_configs(judge, base_url=base_url, temperature=temperature, max_tokens=max_tokens)
    the_judge, backends = build_judge(cfgs, mode=mode, seed=seed)

    def progress(done: int, total: int) -> None:
        if not as_json:
            typer.echo(f"\rgraded {done}/{total} conversations", err=True, nl=done == total)

    async def go() -> Any:
        await _checked(backends)
        try:
            return await run_calibration(the_judge, labelset, mode=mode, on_item=progress)
        finally:
            for b in backends:
                await b.aclose()

    report = asyncio.run(go())
    if save is not None:
        from simulator.config import write_private

        write_private(
            save, "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in report.predictions)
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    _print_calibration(report)


def review_records(run: str, store_path: Path | None) -> tuple[str, list[dict[str, Any]]]:
    """The reviews of a stored run as generic label rows: one per (episode, criterion,
    reviewer), with the episode's transcript as the conversation."""
    from simulator.cli_batch import open_store, run_info

    with open_store(store_path, must_exist=True) as st:
        run_info(st, run)
        reviews = st.reviews(run)
        if not reviews:
            fail(f"run {run!r} has no reviews yet; review it with 'clinsim tui {run}'")
        rows = {r.key: r for r in st.episodes(run)}
        source = f"{st.path}#{run}"
    records = []
    for rv in reviews:
        row = rows.get(rv["key"])
        result = row.result_obj() if row is not None else None
        if row is None or result is None:
            continue  # a review of an episode no longer stored
        crit = next((c for c in row.rubric if c["id"] == rv["criterion_id"]), {})
        records.append(
            {
                "conversation": [
                    {"role": t.role, "content": t.content} for t in result.transcript.turns
                ],
                "conversation_id": rv["key"],
                "criterion": rv["criterion"] or rv["criterion_id"],
                "criterion_id": rv["criterion_id"],
                "label": rv["human_status"],
                "rater": rv["reviewer"],
                "points": crit.get("points", 1),
                "axis": crit.get("axis", "accuracy"),
                "group": crit.get("axis", "accuracy"),
            }
        )
    return source, records


def _print_calibration(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

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

    def row(name: str, f: Any) -> list[str]:
        j, h = f.judge, f.human
        return [
            name,
            str(j.n),
            _fmt(j.accuracy),
            _fmt(j.macro_f1),
            _fmt(j.kappa),
            str(f.unscored),
            str(h.n),
            _fmt(h.accuracy),
            _fmt(h.kappa),
        ]

    for name, f in report.groups.items():
        table.add_row(*row(name, f))
    table.add_row(*row("overall", report.overall), style="bold")
    console = Console()
    console.print(table)
    console.print(
        "judge: its verdict against each human label; humans: rater against rater on the "
        "conversations two raters labelled (the ceiling)."
    )
