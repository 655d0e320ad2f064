"""``ClinsimApp``: the Textual application. ``clinsim tui`` builds it with the services of the
composition root; tests build it with scripted models."""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding

from simulator.store import RunStore, StoreError
from tui.screens.browser import BrowserScreen
from tui.screens.dashboard import BatchJob
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
            from tui.screens.review import ReviewScreen

            self.push_screen(ReviewScreen(self.services, self.initial_run))
