"""What one import produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scenarios._schema import Scenario


@dataclass
class ImportReport:
    """What one import produced: the scenarios, and the rows it could not represent.

    ``skipped`` holds one line per row left out (which row and why); ``notes`` holds
    non-fatal remarks (e.g. facts dropped by the cap). ``rows`` counts the data rows read.
    """

    kind: str
    path: Path
    rows: int = 0
    scenarios: list[Scenario] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
