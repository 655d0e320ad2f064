"""``clinsim batch``, ``clinsim report`` and ``clinsim replay``: batch runs into the run store,
and reading them back. Part of the composition root."""

from __future__ import annotations

import asyncio
import fnmatch
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from simulator._cli_common import DirsOpt, StoreOpt, fail, fail_validation, libraries

if TYPE_CHECKING:
    from collections.abc import Callable

    from simulator.store import RunInfo, RunStore

FORMATS = ("table", "json", "csv", "jsonl", "healthbench", "html")


def open_store(path: Path | None, *, must_exist: bool = False) -> RunStore:
    from simulator.store import RunStore, StoreError, default_store_path

    target = path or default_store_path()
    if must_exist and not target.is_file():
        fail(f"no run store at {target}; run 'clinsim batch' first or pass --store")
    try:
        return RunStore(target)
    except StoreError as e:
        fail(str(e))


def run_info(store: RunStore, name: str) -> RunInfo:
    info = store.run(name)
    if info is None:
        known = ", ".join(r.name for r in store.runs()) or "none"
        fail(f"no run {name!r} in {store.path} (runs: {known})")
    return info


# ---------------------------------------------------------------- batch


def batch(
    scenario: Annotated[
        list[str] | None,
        typer.Option(help="Scenario id or glob (repeatable; default: all that match filters)."),
    ] = None,
    dimension: Annotated[str | None, typer.Option(help="SmartServ or SmartCare.")] = None,
    family: Annotated[str | None, typer.Option(help="Task family, e.g. triage.")] = None,
    language: Annotated[str | None, typer.Option(help="Language code, e.g. en or zh.")] = None,
    persona: Annotated[
        list[str] | None,
        typer.Option(help="Persona id, glob or sampled:SEED (repeatable; default calm-adult)."),
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Trials per (scenario, persona).")] = 1,
    clinician: Annotated[
        list[str] | None,
        typer.Option(help="Clinician model spec; repeat it to compare models in one run."),
    ] = None,
    patient: Annotated[str | None, typer.Option(help="Patient model spec.")] = None,
    judge: Annotated[
        list[str] | None, typer.Option(help="Judge model spec; repeat it for an ensemble.")
    ] = None,
    judge_mode: Annotated[str, typer.Option(help="per-criterion or batched.")] = "per-criterion",
    no_judge: Annotated[bool, typer.Option("--no-judge", help="Simulate only.")] = False,
    base_url: Annotated[
        str | None, typer.Option(help="Base URL for openai: specs (else OPENAI_BASE_URL).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Run config file (YAML or TOML).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Episodes in flight.")] = 8,
    start_rate: Annotated[
        float,
        typer.Option(
            min=0,
            help="Episodes started per second while filling up to --concurrency (0: all at "
            "once); spreads the first calls so that they do not all arrive together.",
        ),
    ] = 500.0,
    retries: Annotated[
        int,
        typer.Option(
            min=1,
            max=20,
            help="Attempts per model call on 429, 5xx, timeouts and dropped connections "
            "(1 = no retry); a server's Retry-After is honoured.",
        ),
    ] = 4,
    max_turns: Annotated[int | None, typer.Option(min=1, help="Most clinician turns.")] = None,
    min_turns: Annotated[
        int | None, typer.Option(min=1, help="Ignore earlier end markers.")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Per-episode time limit (s).")] = None,
    seed: Annotated[int, typer.Option(help="Base seed; each episode's seed derives from it.")] = 0,
    run: Annotated[
        str | None, typer.Option("--run", help="Run name (default: batch-TIME). Reuse to resume.")
    ] = None,
    store: StoreOpt = None,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Discard a stored run of this name and start it again."),
    ] = False,
    prices: Annotated[Path | None, typer.Option(help="Extra price table (YAML).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    scenarios_dir: DirsOpt = None,
    personas_dir: DirsOpt = None,
) -> None:
    """Run scenarios x personas x repeats against clinician models, into the run store.

    Episodes run concurrently; each finished one is committed on its own. Running the same
    --run again resumes it: only missing episodes and those that failed for infrastructure
    reasons run."""
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from simulator.batch import BatchSettings, manifest, plan
    from simulator.config import ConfigFileError, RunConfig, load_run_config, role_config
    from simulator.llm import RetryPolicy
    from simulator.prices import PriceFileError, load_prices
    from simulator.store import RunConfigChanged

    try:
        file_cfg = load_run_config(config) if config else RunConfig()
        price_table = load_prices(prices)
    except (ConfigFileError, PriceFileError) as e:
        fail(str(e))
    scen_lib, pers_lib = libraries(
        (scenarios_dir or []) + file_cfg.scenarios_dir, (personas_dir or []) + file_cfg.personas_dir
    )
    scenarios = _select_scenarios(scen_lib, scenario, dimension, family, language)
    personas = _select_personas(pers_lib, persona or [file_cfg.persona or "calm-adult"])
    try:
        clinician_cfgs = [
            role_config("clinician", file_cfg.clinician, {"spec": s, "base_url": base_url})
            for s in (clinician or [None])  # type: ignore[list-item]
        ]
        patient_cfg = role_config(
            "patient", file_cfg.patient, {"spec": patient, "base_url": base_url}
        )
    except ValidationError as e:
        fail_validation(e)
    from simulator import cli_judging

    judge_cfgs = (
        []
        if no_judge
        else cli_judging.judge_configs(
            judge, base_url=base_url, temperature=None, max_tokens=None, from_file=file_cfg.judge
        )
    )
    cli_judging.check_mode(judge_mode)
    if any(c.spec == "human" for c in [*clinician_cfgs, patient_cfg]):
        fail("a batch cannot have a 'human' role; use 'clinsim run' or the TUI to take part")
    episodes = plan(
        scenarios,
        personas,
        [c.spec for c in clinician_cfgs],
        repeats=repeats,
        seed=seed,
    )
    settings = BatchSettings(
        concurrency=concurrency,
        start_rate=start_rate or None,
        max_turns=max_turns or file_cfg.max_turns,
        min_turns=min_turns or file_cfg.min_turns or 1,
        timeout_s=timeout or file_cfg.timeout_s,
        error_budget=file_cfg.error_budget if file_cfg.error_budget is not None else 3,
        retry=RetryPolicy(attempts=retries),
    )
    man, config_hash = manifest(
        episodes=episodes,
        clinicians=clinician_cfgs,
        patient=patient_cfg,
        judge=judge_cfgs,
        settings={
            "judge_mode": None if no_judge else judge_mode,
            "repeats": repeats,
            "seed": seed,
            "max_turns": settings.max_turns,
            "min_turns": settings.min_turns,
            "timeout_s": settings.timeout_s,
            "error_budget": settings.error_budget,
        },
    )
    name = run or "batch-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    def open_run() -> tuple[RunStore, bool]:
        """The store and the run in it, opened only once every backend has passed its check,
        so that bad input leaves no store and no empty run behind."""
        st = open_store(store)
        try:
            return st, st.open_run(name, man, config_hash, len(episodes), replace=replace)
        except RunConfigChanged as e:
            st.close()
            fail(str(e))

    summary, st = asyncio.run(
        _batch_async(open_run, name, episodes, clinician_cfgs, patient_cfg, judge_cfgs,
                     judge_mode, seed, settings, quiet=quiet)
    )  # fmt: skip
    with st:
        rows = st.episodes(name, with_results=False)
    from simulator.report import cost_by_role

    cost = cost_by_role(rows, price_table)
    typer.echo(
        f"run {name}: {summary.done} finished, {summary.failed} failed, {summary.skipped} already "
        f"in the store; {len(rows)} of {len(episodes)} planned episodes stored in {st.path}"
    )
    for role, items in cost.items():
        spent = [c["cost_usd"] for c in items]
        shown = "unpriced" if None in spent else f"${sum(spent):.4f}"
        tokens = sum(c["prompt_tokens"] + c["completion_tokens"] for c in items)
        typer.echo(f"  {role}: {tokens} tokens, {shown}")
    typer.echo(f"report: clinsim report {name}" + (f" --store {store}" if store else ""))


def _select_scenarios(
    lib: Any, patterns: list[str] | None, dimension: str | None, family: str | None,
    language: str | None,
) -> list[Any]:  # fmt: skip
    from scenarios import Dimension, TaskFamily

    if dimension and dimension.lower() not in {d.value.lower() for d in Dimension}:
        fail(f"unknown dimension {dimension!r}; use one of {', '.join(d.value for d in Dimension)}")
    if family and family not in {f.value for f in TaskFamily}:
        fail(f"unknown family {family!r}; use one of {', '.join(f.value for f in TaskFamily)}")
    pool = lib.select(dimension=dimension, family=family, language=language)
    if patterns:
        chosen = []
        for pat in patterns:
            hits = [s for s in pool if fnmatch.fnmatchcase(s.id, pat)]
            if not hits:
                fail(
                    f"no scenario matches {pat!r} (with the filters given); see "
                    "'clinsim scenarios list'"
                )
            chosen += [s for s in hits if s not in chosen]
        pool = chosen
    if not pool:
        fail("no scenario matches the filters given; see 'clinsim scenarios list'")
    return pool


def _select_personas(lib: Any, patterns: list[str]) -> list[Any]:
    chosen: list[Any] = []
    for pat in patterns:
        if pat.startswith("sampled:") or not any(ch in pat for ch in "*?["):
            try:
                p = lib.get(pat)
            except KeyError as e:
                fail(str(e.args[0]))
            hits = [p]
        else:
            hits = [p for p in lib if fnmatch.fnmatchcase(p.id, pat)]
            if not hits:
                fail(f"no persona matches {pat!r}; see 'clinsim personas list'")
        chosen += [p for p in hits if p not in chosen]
    return chosen


async def _batch_async(
    open_run: Callable[[], tuple[RunStore, bool]],
    name: str,
    episodes: list[Any],
    clinician_cfgs: list[Any],
    patient_cfg: Any,
    judge_cfgs: list[Any],
    judge_mode: str,
    seed: int,
    settings: Any,
    *,
    quiet: bool,
) -> tuple[Any, RunStore]:
    from simulator import cli_judging
    from simulator.batch import Roles, run_batch
    from simulator.llm import BackendConfigError, BackendError, make_backend

    try:
        # as many calls in flight per role as episodes: each waits on at most one at a time
        calls = settings.concurrency
        clinicians = [(make_backend(c, calls=calls), c) for c in clinician_cfgs]
        patient = (make_backend(patient_cfg, calls=calls), patient_cfg)
    except BackendConfigError as e:
        fail(str(e))
    judge: Any = None
    judge_backends: list[Any] = []
    if judge_cfgs:
        judge, judge_backends = cli_judging.build_judge(
            judge_cfgs, mode=judge_mode, seed=seed, retry=settings.retry, calls=calls
        )
    backends = [b for b, _ in clinicians] + [patient[0]] + list(judge_backends)
    try:
        for b in backends:
            try:
                await b.check()
            except BackendConfigError as e:
                fail(str(e))
            except BackendError:
                pass  # a server that fails now fails its episodes, attributed; the run goes on
        roles = Roles(clinicians=clinicians, patient=patient, judge=judge)
        store, resumed = open_run()
        try:
            if quiet:
                return await run_batch(store, name, episodes, roles, settings), store
            return await _with_progress(store, name, episodes, roles, settings, resumed), store
        except BaseException:
            store.close()
            raise
    finally:
        for b in backends:
            await b.aclose()


async def _with_progress(
    store: RunStore, name: str, episodes: list[Any], roles: Any, settings: Any, resumed: bool
) -> Any:
    from rich.console import Console
    from rich.live import Live

    from simulator.batch import Progress, run_batch

    console = Console(stderr=True)

    def line(p: Progress) -> str:
        eta = p.eta_s()
        eta_text = "—" if eta is None else f"{int(eta // 60)}m{int(eta % 60):02d}s"
        return (
            f"[bold]{name}[/]{' (resumed)' if resumed else ''}: "
            f"{p.done} done · [red]{p.failed} failed[/] · {p.in_flight} in flight · "
            f"{p.remaining - p.in_flight} queued · {p.skipped} already stored · "
            f"ETA {eta_text} · {p.tokens_per_s():.0f} tok/s"
        )

    with Live(console=console, refresh_per_second=4, transient=False) as live:

        def update(p: Progress) -> None:
            live.update(line(p))

        return await run_batch(store, name, episodes, roles, settings, on_progress=update)


# ---------------------------------------------------------------- report


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

        write_private(out, text)
        typer.echo(f"wrote {out}")
    elif fmt == "table":
        return
    else:
        typer.echo(text, nl=False)


def _render(
    fmt: str, data: dict[str, Any], rows: list[Any], comparison: Any, scenarios_dir: Any
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
    _print_tables(data, comparison)
    return ""


def _print_tables(data: dict[str, Any], comparison: Any) -> None:
    from rich.console import Console
    from rich.table import Table

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


# ---------------------------------------------------------------- replay


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
    _print_replay(console, row, result, texts)


def _find_episode(rows: list[Any], wanted: str) -> Any:
    if wanted.isdigit() and 1 <= int(wanted) <= len(rows):
        return rows[int(wanted) - 1]
    for r in rows:
        if r.key == wanted or (
            r.result and json.loads(r.result)["transcript"]["episode_id"] == wanted
        ):
            return r
    fail(f"no episode {wanted!r} in this run; run 'clinsim replay RUN' to list them")


def _print_replay(console: Any, row: Any, result: Any, texts: dict[str, str]) -> None:
    from rich.markup import escape

    t = result.transcript
    console.rule(f"[bold]{escape(row.key)}[/] · {t.termination.value}")
    cited: dict[int, list[Any]] = {}
    for v in result.verdicts:
        for i in v.evidence_turns:
            cited.setdefault(i, []).append(v)
    mark = {
        "met": "[green]✓ met[/]",
        "not_met": "[red]✗ not met[/]",
        "unscored": "[yellow]? unscored[/]",
    }

    def verdict_line(v: Any) -> str:
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
