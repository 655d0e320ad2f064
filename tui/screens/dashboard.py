"""The run dashboard: a batch's progress read from the run store (so it follows a batch
started here or running elsewhere on the same store), with per-axis and per-family charts;
the dialog that asks for a batch (``BatchScreen``) and ``launch_batch``, which starts it
(``ClinsimApp.new_batch`` chains the three)."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, ProgressBar, Static

from simulator.config import data_home, private_dir
from simulator.defaults import DEFAULT_PERSONA
from simulator.report import build_report
from tui.nav import app_of
from tui.services import Services
from tui.widgets.bars import bar_chart


@dataclass
class BatchJob:
    """A batch this UI started, as a child process writing to the run store."""

    run: str
    process: subprocess.Popen[bytes]
    log: Path

    def error(self) -> str | None:
        """The batch's last error line, once it has exited with a failure."""
        code = self.process.poll()
        if code in (None, 0):
            return None
        lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        return lines[-1] if lines else f"the batch exited with code {code}"


class DashboardScreen(Screen[None]):
    """Progress of one run, refreshed from the store every second."""

    BINDINGS = [
        Binding("v", "review", "Review"),
        Binding("g", "refresh", "Refresh"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, services: Services, run: str, *, interval: float = 1.0) -> None:
        super().__init__()
        self.services = services
        self.run_name = run
        self.interval = interval
        self.seen: tuple[int, str] | None = None
        self.report: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="progress-text")
        yield ProgressBar(id="progress", show_eta=False)
        with Horizontal(id="charts"):
            yield Static(id="by-axis", classes="chart")
            yield Static(id="by-family", classes="chart")
        yield Static(id="failures")
        yield Footer()

    def on_mount(self) -> None:
        self.action_refresh()
        self.set_interval(self.interval, self.action_refresh)

    def action_refresh(self) -> None:
        self.run_worker(self._refresh(), exclusive=True, group="dashboard")

    async def _refresh(self) -> None:
        job = app_of(self).batch_jobs.get(self.run_name)
        info, rows = None, []
        if self.services.store_path.is_file():  # a batch just started may not have made it yet
            store = app_of(self).run_store()
            if store is None:
                return
            info = store.run(self.run_name)
            if info is not None:  # results are read only when an episode was added
                rows = store.episodes(self.run_name, with_results=False)
                stamp = (len(rows), max((r.finished_at for r in rows), default=""))
                if stamp != self.seen:
                    self.seen = stamp
                    full = store.episodes(self.run_name)
                    self.report = await asyncio.to_thread(build_report, info, full)
        if info is None:
            waiting = job is not None and job.process.poll() is None
            self._show_text(
                Text(f"run {self.run_name}: " + ("starting…" if waiting else "not in the store"))
            )
            self._show_job(job)
            return
        report = self.report
        assert report is not None
        done, failed = len(rows) - report["failed"], report["failed"]
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=max(info.planned, 1), progress=len(rows))
        text = Text()
        text.append(f"run {self.run_name}", style="bold")
        running = job is not None and job.process.poll() is None
        text.append(" · running here" if running else "", style="green")
        text.append(f"\n{len(rows)}/{info.planned} stored · {done} done · ")
        text.append(f"{failed} failed", style="red" if failed else "")
        if report["scored"]:
            low, high = report["ci"]
            ci = f" [{low:.2f}-{high:.2f}]" if low is not None else ""
            text.append(f" · mean score {report['score']:.2f}{ci} (n={report['scored']})")
        crit = report["critical"]
        if crit["evaluated"]:
            text.append(f" · critical pass {crit['passed']}/{crit['evaluated']}")
        rate = _rate(rows)
        if rate is not None and len(rows) < info.planned:
            text.append(f" · {rate * 60:.1f} episodes/min")
        self._show_text(text)
        self.query_one("#by-axis", Static).update(bar_chart("By axis", report["by_axis"]))
        self.query_one("#by-family", Static).update(bar_chart("By family", report["by_family"]))
        fails = Text()
        if report["failures_by_role"]:
            fails.append("failed by role: ", style="bold")
            fails.append(", ".join(f"{k} {v}" for k, v in report["failures_by_role"].items()))
        self.query_one("#failures", Static).update(fails)
        self._show_job(job)

    def _show_text(self, text: Text) -> None:
        self.query_one("#progress-text", Static).update(text)

    def _show_job(self, job: BatchJob | None) -> None:
        error = job.error() if job is not None else None
        if error:
            self.query_one("#failures", Static).update(Text(f"batch stopped: {error}", "bold red"))

    def action_review(self) -> None:
        app_of(self).open_review(self.run_name)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()


def _rate(rows: list[Any]) -> float | None:
    """Episodes per second over the stored finish times (None with fewer than two)."""
    times = sorted(datetime.fromisoformat(r.finished_at) for r in rows if r.finished_at)
    if len(times) < 2 or times[-1] == times[0]:
        return None
    return (len(times) - 1) / (times[-1] - times[0]).total_seconds()


# ---------------------------------------------------------------------- starting a batch


class BatchScreen(ModalScreen[list[str] | None]):
    """The batch to run: returns the ``clinsim batch`` arguments."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "start", "Start")]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services

    def compose(self) -> ComposeResult:
        specs = self.services.specs
        name = "tui-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        fields = [
            ("run", "Run name", name),
            ("scenarios", "Scenarios (ids or globs, space-separated)", "*"),
            ("personas", "Personas (ids, globs or sampled:N)", DEFAULT_PERSONA),
            ("repeats", "Repeats", "1"),
            ("clinicians", "Clinician models (space-separated)", specs["clinician"]),
            ("patient", "Patient model", specs["patient"]),
            ("judge", "Judge model (empty: no judge)", specs["judge"]),
            ("concurrency", "Episodes in flight", "4"),
        ]
        with Vertical(id="batch"):
            yield Label("[b]New batch[/b] into the run store")
            for key, label, value in fields:
                yield Label(label)
                yield Input(value, id=f"b-{key}", compact=True)
            yield Button("Start (ctrl+s)", id="b-start", variant="primary", compact=True)
        yield Footer()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#b-start")
    def action_start(self) -> None:
        v = {
            k: self.query_one(f"#b-{k}", Input).value.strip()
            for k in ("run", "scenarios", "personas", "repeats", "clinicians", "patient",
                      "judge", "concurrency")
        }  # fmt: skip
        if not v["run"] or not v["clinicians"]:
            self.notify("a batch needs a run name and a clinician model", severity="error")
            return
        args = ["--run", v["run"], "--quiet", "--repeats", v["repeats"] or "1",
                "--concurrency", v["concurrency"] or "4"]  # fmt: skip
        for pattern in shlex.split(v["scenarios"]):
            args += ["--scenario", pattern]
        for pattern in shlex.split(v["personas"]):
            args += ["--persona", pattern]
        for spec in shlex.split(v["clinicians"]):
            args += ["--clinician", spec]
        if v["patient"]:
            args += ["--patient", v["patient"]]
        args += (
            ["--judge", v["judge"], "--judge-mode", self.services.judge_mode]
            if v["judge"]
            else ["--no-judge"]
        )
        self.dismiss(args)


def launch_batch(services: Services, args: list[str]) -> BatchJob:
    """Start ``clinsim batch`` as its own process (it goes on if the UI is closed); its
    output goes to a private log under $CLINSIM_HOME/logs."""
    run = args[args.index("--run") + 1]
    log = data_home() / "logs" / f"batch-{run}.log"
    private_dir(log.parent)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    argv = [*services.batch_command, *args, "--store", str(services.store_path),
            *services.extra_batch_args]  # fmt: skip
    with os.fdopen(fd, "wb") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return BatchJob(run, process, log)
