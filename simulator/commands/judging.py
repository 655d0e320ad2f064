"""``clinsim score`` and ``clinsim judge calibrate``: judging saved transcripts and measuring
judges against human labels."""

from __future__ import annotations

import asyncio
import json
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from simulator.commands.common import DirsOpt, StoreOpt, fail, libraries, open_store, run_info
from simulator.commands.wiring import build_judge, checked, judge_configs
from simulator.defaults import DEFAULT_JUDGE_MODE

if TYPE_CHECKING:
    from judges import CalibrationReport, EnsembleJudge, LabelSet, RubricJudge
    from scenarios import Scenario
    from simulator.llm import ChatBackend
    from simulator.schemas import EpisodeResult

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


# ---------------------------------------------------------------- score


def default_store_path() -> Path:
    from simulator.store import default_store_path as path

    return path()


def _results(paths: list[Path], store: Path | None) -> list[tuple[Path, EpisodeResult]]:
    """Results from files, folders of them, or stored runs (a name that is not a path)."""
    out: list[tuple[Path, EpisodeResult]] = []
    for p in paths:
        if p.exists() and "/" not in str(p) and _stored_run(str(p), store):
            target = store or default_store_path()
            fail(
                f"{p} names both a file or folder here and a run in {target}; write ./{p} "
                "for the file or folder, or use another store"
            )
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


def _stored_run(name: str, store: Path | None) -> bool:
    """Whether the store (if there is one) holds a run of this name."""
    from simulator.store import RunStore, StoreError

    target = store or default_store_path()
    if not target.is_file():
        return False
    try:
        with RunStore(target, readonly=True) as st:
            return st.run(name) is not None
    except StoreError:
        return False


def _run_results(name: str, store: Path | None) -> list[tuple[Path, EpisodeResult]]:
    from simulator.store import RunStore, StoreError

    target = store or default_store_path()
    if not target.is_file():
        fail(f"{name}: no such file or folder, and no run store at {target} to find a run in")
    try:
        with RunStore(target, readonly=True) as st:
            if st.run(name) is None:
                fail(f"{name}: no such file, folder, or run in {target}")
            rows = [r for r in st.episodes(name) if r.result is not None]
    except StoreError as e:
        fail(str(e))
    return [(Path(_safe(name)) / f"{_safe(r.key)}.json", r.result_obj()) for r in rows]


def _safe(text: str) -> str:
    """A file name from a run name or episode key."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def _load_result(path: Path) -> EpisodeResult:
    from scenarios.yamlio import DataFileError
    from simulator.record import load_result

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
    mode: ModeOpt = DEFAULT_JUDGE_MODE,
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
    from simulator.commands.views import print_rescore_summary
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
    print_rescore_summary(summary, as_json, out)


def _out_names(files: list[Path], out: Path) -> list[Path]:
    seen: dict[str, int] = {}
    names: list[Path] = []
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
    """Check the judge's backends, re-judge every result, and close the backends."""
    from simulator.commands.views import echo_scored
    from simulator.rejudge import rejudge

    await checked(backends)
    try:
        return await rejudge(
            judge, results, scenarios, targets, on_scored=None if quiet else echo_scored
        )
    finally:
        for b in backends:
            await b.aclose()


# ---------------------------------------------------------------- calibrate


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
    mode: ModeOpt = DEFAULT_JUDGE_MODE,
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
    from judges import load_labels
    from scenarios import DataFileError
    from simulator.commands.views import echo_graded, print_calibration

    if save is not None:
        from simulator.config import check_writable

        if why := check_writable(save, "--save"):
            fail(why)
    if (labels is None) == (run is None):
        fail("give either --labels FILE or --run NAME (reviews saved in the TUI)")
    try:
        if labels is not None:
            labelset = load_labels(labels).limited(limit)
        else:
            assert run is not None
            labelset = review_labels(run, store).limited(limit)
    except DataFileError as e:
        fail(str(e))
    cfgs = judge_configs(judge, base_url=base_url, temperature=temperature, max_tokens=max_tokens)
    the_judge, backends = build_judge(cfgs, mode=mode, seed=seed)

    def progress(done: int, total: int) -> None:
        if not as_json:
            echo_graded(done, total)

    async def go() -> CalibrationReport:
        await checked(backends)
        try:
            return await run_calibration(the_judge, labelset, mode=mode, on_item=progress)
        finally:
            for b in backends:
                await b.aclose()

    report = asyncio.run(go())
    if save is not None:
        from simulator.config import write_private

        try:
            write_private(
                save,
                "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in report.predictions),
            )
        except OSError as e:
            fail(f"could not write --save {save}: {e.strerror or e}; choose another path")
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    print_calibration(report)


def review_labels(run: str, store_path: Path | None) -> LabelSet:
    """The TUI reviews of a stored run, as labels to calibrate a judge against."""
    from judges import labels_from_reviews

    with open_store(store_path, must_exist=True) as st:
        run_info(st, run)
        reviews = st.reviews(run)
        if not reviews:
            fail(f"run {run!r} has no reviews yet; review it with 'clinsim tui {shlex.quote(run)}'")
        rows = {r.key: r for r in st.episodes(run)}
        source = f"{st.path}#{run}"
    return labels_from_reviews(source, reviews, rows)
