"""Importers: public clinical data sets -> clinsim scenarios.

Three sources (see ``../shared/data/README.md`` for their formats):

- ``healthbench``: OpenAI HealthBench rows; the physician-written rubric is kept exactly.
- ``agentclinic``: AgentClinic MedQA OSCE cases; facts from the patient-actor script.
- ``mediq``: MediQ cases; facts from the atomic ``facts``.

``import_file(kind, path)`` returns the scenarios; rows a source has but the schema cannot
hold are left out with a warning (``ImportSkippedWarning``). ``import_report(kind, path)``
returns an ``ImportReport`` that lists them instead. Malformed files raise ``DataFileError``
naming the file and line. ``write_scenarios`` writes one YAML file per scenario.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from scenarios._schema import Scenario, slug
from scenarios.importers._agentclinic import import_agentclinic
from scenarios.importers._healthbench import import_healthbench
from scenarios.importers._mediq import import_mediq
from scenarios.importers._report import ImportReport
from scenarios.yamlio import Row, dump_yaml, read_jsonl

FILE_MODE = 0o600  # scenario files can hold health data
DIR_MODE = 0o700


class ImportSkippedWarning(UserWarning):
    """A source row was left out because the scenario schema cannot represent it."""


_REPORTERS: dict[str, Callable[[Path], ImportReport]] = {
    "healthbench": import_healthbench,
    "agentclinic": import_agentclinic,
    "mediq": import_mediq,
}


def _scenarios_only(reporter: Callable[[Path], ImportReport]) -> Callable[[Path], list[Scenario]]:
    def run(path: Path) -> list[Scenario]:
        report = reporter(Path(path))
        for reason in report.skipped:
            warnings.warn(f"{report.path}: skipped {reason}", ImportSkippedWarning, stacklevel=3)
        return report.scenarios

    run.__name__ = reporter.__name__
    run.__doc__ = reporter.__doc__
    return run


IMPORTERS: dict[str, Callable[[Path], list[Scenario]]] = {
    kind: _scenarios_only(reporter) for kind, reporter in _REPORTERS.items()
}


def _reporter(kind: str) -> Callable[[Path], ImportReport]:
    try:
        return _REPORTERS[kind]
    except KeyError:
        raise ValueError(
            f"unknown importer {kind!r}; choose one of {', '.join(sorted(_REPORTERS))}"
        ) from None


def import_report(kind: str, path: Path) -> ImportReport:
    """Import ``path`` with the ``kind`` importer; the report lists skipped rows and notes."""
    return _reporter(kind)(Path(path))


def import_file(kind: str, path: Path) -> list[Scenario]:
    """Import ``path`` with the ``kind`` importer ("healthbench", "agentclinic", "mediq").

    Raises ValueError for an unknown kind and DataFileError for a malformed file; each row
    left out is reported as an ``ImportSkippedWarning``.
    """
    _reporter(kind)
    return IMPORTERS[kind](Path(path))


def write_scenarios(scenarios: Iterable[Scenario], out_dir: Path) -> list[Path]:
    """Write each scenario to ``out_dir/<id>.yaml`` (created if needed); return the paths.

    Each file is written atomically (a temporary file, then ``os.replace``) with mode 0600,
    replacing a file of the same name. Two scenarios with the same id are refused before
    anything is written.
    """
    items = list(scenarios)
    seen: set[str] = set()
    for sc in items:
        if sc.id in seen:
            raise ValueError(f"duplicate scenario id {sc.id!r}; nothing was written")
        seen.add(sc.id)
    out = Path(out_dir)
    # every missing folder, parents included, readable by the owner only (mkdir's `mode` is
    # not applied to parents, and is itself masked by the umask)
    for folder in reversed([out, *out.parents]):
        if not folder.exists():
            folder.mkdir(mode=DIR_MODE, exist_ok=True)
            os.chmod(folder, DIR_MODE)
    paths: list[Path] = []
    for sc in items:
        target = out / f"{sc.id}.yaml"
        text = dump_yaml(sc.model_dump(mode="json", exclude_defaults=False))
        _write_atomic(target, text)
        paths.append(target)
    return paths


def _write_atomic(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # POSIX; mkstemp already creates the file owner-only
            os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)  # no fsync: output can be regenerated, and bulk imports stay fast
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


__all__ = [
    "IMPORTERS",
    "ImportReport",
    "ImportSkippedWarning",
    "Row",
    "import_agentclinic",
    "import_file",
    "import_healthbench",
    "import_mediq",
    "import_report",
    "read_jsonl",
    "slug",
    "write_scenarios",
]
