"""``ClinsimApp``: the Textual application. ``clinsim tui`` builds it with the services of the
composition root; tests build it with scripted models.

The app is where screens meet: each screen navigates through the app's ``open_*`` methods
(``tui.nav.app_of`` gives a screen the app), so no screen module imports another."""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding

from scenarios import Scenario
from simulator.schemas import EpisodeResult
from simulator.store import RunStore, StoreError
from tui.episode_setup import EpisodeSetup
from tui.screens.browser import BrowserScreen
from tui.screens.dashboard import BatchJob, BatchScreen, DashboardScreen, launch_batch
from tui.screens.review import ReviewScreen, RunsScreen
from tui.services import Services


class ClinsimApp(App[None]):
    """Browse scenarios, run and take part in episodes, review runs, follow batches."""

    CSS_PATH = "app.tcss"
    TITLE = "clinsim"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(self, services: Services, *, run: str | None = None) -> None:
        super().__init__()
        self.services = services
        self.initial_run = run
        self.batch_jobs: dict[str, BatchJob] = {}
        self._store: RunStore | None = None

    def run_store(self) -> RunStore | None:
        """The run store, opened once and shared by the screens; None (with a message) while
        there is no store file yet or it cannot be used."""
        if self._store is None:
            path = self.services.store_path
            if not path.is_file():
                self.notify(
                    f"no run store at {path}; start a batch with b or 'clinsim batch'",
                    severity="warning",
                )
                return None
            try:
                self._store = RunStore(path)
            except StoreError as e:
                self.notify(str(e), severity="error")
                return None
        return self._store

    def on_unmount(self) -> None:
        if self._store is not None:
            self._store.close()

    def on_mount(self) -> None:
        self.push_screen(BrowserScreen(self.services))
        if self.initial_run:
            self.open_review(self.initial_run)

    # ------------------------------------------------------------------ navigation

    def open_episode(self, setup: EpisodeSetup) -> None:
        """Run an episode as set up, live."""
        # The episode screens load the episode engine (langgraph); import them only when
        # one is opened, so that the browser comes up without it.
        from tui.screens.episode import EpisodeScreen

        self.push_screen(EpisodeScreen(self.services, setup))

    def open_fork(self, scenario: Scenario, source: EpisodeResult) -> None:
        """Ask where to fork a finished episode and with which clinician, then run the
        branch beside the original."""
        from tui.screens.fork import open_fork

        open_fork(self, self.services, scenario, source)

    def open_runs(self) -> None:
        """The runs in the store."""
        self.push_screen(RunsScreen(self.services))

    def open_review(self, run: str) -> None:
        """A run's episodes, to review them."""
        self.push_screen(ReviewScreen(self.services, run))

    def open_dashboard(self, run: str) -> None:
        """A run's progress and charts."""
        self.push_screen(DashboardScreen(self.services, run))

    def new_batch(self) -> None:
        """Ask for a batch, start it as its own process and follow it on its dashboard."""

        def chosen(args: list[str] | None) -> None:
            if args is None:
                return
            job = launch_batch(self.services, args)
            self.batch_jobs[job.run] = job
            self.open_dashboard(job.run)

        self.push_screen(BatchScreen(self.services), chosen)
