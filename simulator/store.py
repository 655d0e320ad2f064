"""The run store: SQLite in WAL mode, one transaction per finished episode.

A crash or ``kill -9`` loses at most the episodes in flight, never a finished one. Files are
created readable by their owner only: transcripts can hold health data.

Tables: ``runs`` (name, config hash, manifest), ``episodes`` (one row per planned episode that
finished or failed: its key, what it ran, status, failure and which role caused it, scores,
and the full result JSON) and ``reviews`` (human verdicts from the TUI).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from simulator.config import data_home
from simulator.schemas import FailureRole, RunManifest
from simulator.store_rows import _COLUMNS, _JSON_COLUMNS, EpisodeRow, Review, RubricItem, RunInfo

__all__ = [
    "EpisodeRow",
    "FailureRole",
    "Review",
    "RubricItem",
    "RunBusy",
    "RunConfigChanged",
    "RunInfo",
    "RunStore",
    "StoreError",
]
STORE_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    manifest TEXT NOT NULL,
    planned INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS episodes (
    run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
    key TEXT NOT NULL,
    pair_key TEXT NOT NULL,
    clinician TEXT NOT NULL,
    scenario_id TEXT NOT NULL,
    persona_id TEXT NOT NULL,
    trial INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    dimension TEXT NOT NULL,
    family TEXT NOT NULL,
    language TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    failure_role TEXT,
    failure_kind TEXT,
    failure_message TEXT,
    score REAL,
    critical_pass INTEGER,
    unscored INTEGER NOT NULL DEFAULT 0,
    rubric TEXT NOT NULL DEFAULT '[]',
    judge_directed_turns TEXT NOT NULL DEFAULT '[]',
    usage TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    attempts INTEGER NOT NULL DEFAULT 1,
    finished_at TEXT NOT NULL,
    duration_s REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (run, key)
);
CREATE TABLE IF NOT EXISTS leases (
    run TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reviews (
    run TEXT NOT NULL,
    key TEXT NOT NULL,
    criterion_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    judge_status TEXT NOT NULL,
    human_status TEXT NOT NULL CHECK (human_status IN ('met', 'not_met')),
    note TEXT NOT NULL DEFAULT '',
    reviewed_at TEXT NOT NULL,
    criterion TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run, key, criterion_id, reviewer)
);
"""


class StoreError(Exception):
    """A store that cannot be used (not a clinsim store, unreadable, locked)."""


class RunBusy(StoreError):
    """The run is being written by another live process."""


class RunConfigChanged(StoreError):
    """The same run name with another configuration."""


def default_store_path() -> Path:
    """``$CLINSIM_HOME/runs.sqlite`` (default ``~/.local/share/clinsim/runs.sqlite``)."""
    return data_home() / "runs.sqlite"


class RunStore:
    """A clinsim run store. Use as a context manager, or call ``close()``."""

    def __init__(self, path: Path | str | None = None, *, readonly: bool = False) -> None:
        """Open (and create, unless ``readonly``) a store. ``readonly``: for commands that
        only read (report, replay, calibrate --run): not a byte of the file changes, a file
        of another program or of a newer clinsim is refused, and a store in a read-only
        folder or on read-only media can be read."""
        self.path = Path(path) if path is not None else default_store_path()
        self.readonly = readonly
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"{self.path}: not a file; --store takes a SQLite file path")
        if readonly:
            self.db = self._open_readonly()
            return
        from simulator.config import private_dir

        private_dir(self.path.parent)
        old = os.umask(0o077)  # the database, its -wal and -shm files: owner only
        try:
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(_SCHEMA)
            columns = {r[1] for r in self.db.execute("PRAGMA table_info(reviews)")}
            if "criterion" not in columns:  # stores made before reviews kept the text
                self.db.execute("ALTER TABLE reviews ADD COLUMN criterion TEXT NOT NULL DEFAULT ''")
            self.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (STORE_SCHEMA_VERSION,)
            )
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a clinsim run store ({e})") from None
        finally:
            os.umask(old)

    def _open_readonly(self) -> sqlite3.Connection:
        from urllib.parse import quote

        if not self.path.is_file():
            raise StoreError(f"{self.path}: no such run store")
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            # a WAL store in a read-only place: no -shm can be made; nothing can write there
            # either, so the file is read as it is
            try:
                db = sqlite3.connect(f"{uri}&immutable=1", uri=True, isolation_level=None)
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.DatabaseError as e:
                raise StoreError(f"{self.path}: cannot read the store ({e})") from None
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a clinsim run store ({e})") from None
        db.row_factory = sqlite3.Row
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "runs", "episodes", "reviews"} <= tables:
            db.close()
            raise StoreError(
                f"{self.path}: not a clinsim run store (it has no clinsim tables); check --store"
            )
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row is not None and str(row[0]).isdigit() else 0
        if version > STORE_SCHEMA_VERSION:
            db.close()
            raise StoreError(
                f"{self.path}: made by a newer clinsim (store schema {version}; this one reads "
                f"up to {STORE_SCHEMA_VERSION}); upgrade clinsim to read it"
            )
        return db

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ------------------------------------------------------------------ runs

    def run(self, name: str) -> RunInfo | None:
        row = self.db.execute("SELECT * FROM runs WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return RunInfo(
            row["name"], row["created_at"], row["config_hash"], json.loads(row["manifest"]),
            row["planned"],
        )  # fmt: skip

    def runs(self) -> list[RunInfo]:
        names = [r[0] for r in self.db.execute("SELECT name FROM runs ORDER BY created_at, name")]
        return [info for n in names if (info := self.run(n)) is not None]

    def open_run(
        self,
        name: str,
        manifest: RunManifest | dict[str, Any],
        config_hash: str,
        planned: int,
        *,
        replace: bool,
        lease: bool = False,
    ) -> bool:
        """Create the run, or check that an existing one has the same config. True if it
        existed (a resume). With ``replace`` an existing run and its episodes are discarded.

        ``lease``: this process becomes the run's only writer until ``release``; a run that
        another live process holds is refused (``RunBusy``), ``--replace`` included. The
        check and the creation are one transaction, so two processes cannot both start a run.
        A lease whose process has died (a crash, ``kill -9``) is taken over."""
        if isinstance(manifest, RunManifest):
            manifest = manifest.model_dump(mode="json")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._tx() as db:
            if lease:
                self._check_lease(name)
            existing = self.run(name)
            if existing is not None and replace:
                db.execute("DELETE FROM episodes WHERE run = ?", (name,))
                db.execute("DELETE FROM reviews WHERE run = ?", (name,))
                db.execute("DELETE FROM runs WHERE name = ?", (name,))
                existing = None
            if existing is not None and existing.config_hash != config_hash:
                raise RunConfigChanged(
                    f"run {name!r} in {self.path} was started with another configuration "
                    f"({_changed(existing.manifest, manifest)}); use another --run name, or "
                    "--replace to discard the stored run"
                )
            if existing is None:
                db.execute(
                    "INSERT INTO runs VALUES (?, ?, ?, ?, ?)",
                    (name, now, config_hash, json.dumps(manifest, sort_keys=True), planned),
                )
            if lease:
                db.execute(
                    "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)",
                    (name, os.getpid(), socket.gethostname(), now),
                )
        return existing is not None

    def _check_lease(self, name: str) -> None:
        row = self.db.execute("SELECT * FROM leases WHERE run = ?", (name,)).fetchone()
        if row is None:
            return
        pid, host, since = row["pid"], row["host"], row["started_at"]
        if host == socket.gethostname():
            if pid == os.getpid() or not _alive(pid):
                return  # ours, or a process that has died: taken over
            where = f"process {pid}"
        else:
            where = f"process {pid} on {host}"
        raise RunBusy(
            f"run {name!r} in {self.path} is being written by {where} since {since}; wait "
            "for it to end or stop it, or use another --run name"
        )

    def release(self, name: str) -> None:
        """End this process's lease on the run (see ``open_run``)."""
        with self._tx() as db:
            db.execute(
                "DELETE FROM leases WHERE run = ? AND pid = ? AND host = ?",
                (name, os.getpid(), socket.gethostname()),
            )

    # ------------------------------------------------------------------ episodes

    def record(self, row: EpisodeRow) -> None:
        """Save one finished (or failed) episode, in one transaction."""
        values = []
        for col in _COLUMNS:
            v = getattr(row, col)
            if col in _JSON_COLUMNS:
                v = json.dumps(v, sort_keys=True)
            elif col == "critical_pass" and v is not None:
                v = int(v)
            values.append(v)
        marks = ", ".join("?" for _ in _COLUMNS)
        with self._tx() as db:
            prev = db.execute(
                "SELECT attempts FROM episodes WHERE run = ? AND key = ?", (row.run, row.key)
            ).fetchone()
            if prev is not None:
                values[_COLUMNS.index("attempts")] = prev["attempts"] + 1
            db.execute(
                f"INSERT OR REPLACE INTO episodes ({', '.join(_COLUMNS)}) VALUES ({marks})", values
            )

    def statuses(self, run: str) -> dict[str, tuple[str, str | None]]:
        """key -> (status, failure_role) for every stored episode of ``run``."""
        return {
            r["key"]: (r["status"], r["failure_role"])
            for r in self.db.execute(
                "SELECT key, status, failure_role FROM episodes WHERE run = ?", (run,)
            )
        }

    def episodes(self, run: str, *, with_results: bool = True) -> list[EpisodeRow]:
        cols = _COLUMNS if with_results else [c for c in _COLUMNS if c != "result"]
        rows = self.db.execute(
            f"SELECT {', '.join(cols)} FROM episodes WHERE run = ? ORDER BY key", (run,)
        ).fetchall()
        return [self._row(r) for r in rows]

    def episode(self, run: str, key: str) -> EpisodeRow | None:
        r = self.db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM episodes WHERE run = ? AND key = ?", (run, key)
        ).fetchone()
        return None if r is None else self._row(r)

    @staticmethod
    def _row(r: sqlite3.Row) -> EpisodeRow:
        data = dict(r)
        for col in _JSON_COLUMNS:
            data[col] = json.loads(data[col])
        if data.get("critical_pass") is not None:
            data["critical_pass"] = bool(data["critical_pass"])
        return EpisodeRow(**data)

    # ------------------------------------------------------------------ reviews

    def save_review(
        self,
        run: str,
        key: str,
        criterion_id: str,
        *,
        reviewer: str,
        judge_status: str,
        human_status: str,
        note: str = "",
        criterion: str = "",
    ) -> None:
        """A reviewer's verdict on one criterion of one episode (replaces their earlier one).
        ``criterion`` is the criterion's text, kept so that the labels stand on their own."""
        if human_status not in ("met", "not_met"):
            raise ValueError(f"human_status must be 'met' or 'not_met', got {human_status!r}")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO reviews (run, key, criterion_id, reviewer, judge_status, "
                "human_status, note, reviewed_at, criterion) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run,
                    key,
                    criterion_id,
                    reviewer,
                    judge_status,
                    human_status,
                    note,
                    now,
                    criterion,
                ),
            )

    def delete_review(self, run: str, key: str, criterion_id: str, *, reviewer: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM reviews "
                "WHERE run = ? AND key = ? AND criterion_id = ? AND reviewer = ?",
                (run, key, criterion_id, reviewer),
            )

    def reviews(self, run: str) -> list[Review]:
        return [
            cast(Review, {"criterion": "", **dict(r)})  # stores before the text was kept
            for r in self.db.execute(
                "SELECT * FROM reviews WHERE run = ? ORDER BY key, criterion_id, reviewer", (run,)
            )
        ]

    def integrity(self) -> str:
        return str(self.db.execute("PRAGMA integrity_check").fetchone()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def _changed(old: dict[str, Any], new: dict[str, Any], prefix: str = "", depth: int = 0) -> str:
    """Which parts of two manifests differ (two levels deep), for the refusal message."""
    keys = sorted(k for k in set(old) | set(new) if k != "versions" and old.get(k) != new.get(k))
    parts = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        if depth == 0 and isinstance(a, dict) and isinstance(b, dict):
            parts.append(_changed(a, b, f"{prefix}{k}.", depth + 1).removeprefix("changed: "))
        else:
            parts.append(f"{prefix}{k}")
    return "changed: " + ", ".join(p for p in parts if p) if parts else "its hash differs"
