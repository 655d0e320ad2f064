"""Find, load and validate scenario files: the built-in library and users' own folders."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

from scenarios._schema import Scenario
from scenarios.yamlio import DataFileError, iter_yaml_files, load_model


def builtin_dir() -> Path:
    """Folder of the built-in scenario library (package data)."""
    return Path(str(resources.files("scenarios") / "data"))


def load_scenario(path: Path) -> Scenario:
    """Load and validate one scenario file."""
    return load_model(path, Scenario)


class ScenarioLibrary:
    """Scenarios by id, from the built-in library and any extra folders."""

    def __init__(self, scenarios: dict[str, Scenario], sources: dict[str, Path]) -> None:
        self._by_id = scenarios
        self.sources = sources

    @classmethod
    def load(cls, extra_dirs: Iterable[Path] = (), *, builtin: bool = True) -> ScenarioLibrary:
        """Load every scenario; a duplicate id across files is an error naming both files."""
        roots = ([builtin_dir()] if builtin else []) + [Path(d) for d in extra_dirs]
        by_id: dict[str, Scenario] = {}
        sources: dict[str, Path] = {}
        for path in iter_yaml_files(roots):
            sc = load_scenario(path)
            if sc.id in by_id:
                raise DataFileError(
                    path,
                    f"duplicate scenario id {sc.id!r}, also defined in {sources[sc.id]}; "
                    "give one of them another id",
                    field="id",
                )
            by_id[sc.id] = sc
            sources[sc.id] = path
        return cls(by_id, sources)

    def get(self, scenario_id: str) -> Scenario:
        try:
            return self._by_id[scenario_id]
        except KeyError:
            raise KeyError(
                f"unknown scenario id {scenario_id!r}; see 'clinsim scenarios list'"
            ) from None

    def __contains__(self, scenario_id: object) -> bool:
        return scenario_id in self._by_id

    def __iter__(self) -> Iterator[Scenario]:
        return iter(sorted(self._by_id.values(), key=lambda s: s.id))

    def __len__(self) -> int:
        return len(self._by_id)

    def select(
        self,
        *,
        dimension: str | None = None,
        family: str | None = None,
        language: str | None = None,
    ) -> list[Scenario]:
        """Scenarios matching every filter given (case-insensitive)."""
        out = []
        for sc in self:
            if dimension and sc.dimension.value.lower() != dimension.lower():
                continue
            if family and sc.family.value != family.lower():
                continue
            if language and sc.language.lower() != language.lower():
                continue
            out.append(sc)
        return out


def validate_paths(paths: Iterable[Path]) -> tuple[list[Scenario], list[DataFileError]]:
    """Validate files and folders; return the valid scenarios and one error per bad file."""
    ok: list[Scenario] = []
    errors: list[DataFileError] = []
    seen: dict[str, Path] = {}
    for p in paths:
        try:
            files = list(iter_yaml_files([p]))
        except DataFileError as e:
            errors.append(e)
            continue
        for f in files:
            try:
                sc = load_scenario(f)
            except DataFileError as e:
                errors.append(e)
                continue
            if sc.id in seen:
                errors.append(
                    DataFileError(
                        f, f"duplicate scenario id {sc.id!r}, also in {seen[sc.id]}", field="id"
                    )
                )
                continue
            seen[sc.id] = f
            ok.append(sc)
    return ok, errors
