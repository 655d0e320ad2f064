"""Reading YAML data files into pydantic models with errors people can act on.

Shared by the scenario and persona loaders. Errors carry the file, the line (from the YAML
node marks), the field path, the bad value and the message, and print as one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

MAX_FILE_BYTES = 2_000_000
YAML_SUFFIXES = (".yaml", ".yml")


class DataFileError(ValueError):
    """A data file that cannot be used; ``str()`` is one line: where, what, what to do."""

    def __init__(
        self,
        path: Path | str,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        value: Any = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.value = value
        self.message = message
        where = self.path + (f":{line}" if line else "")
        what = f"field '{field}': " if field else ""
        got = ""
        if value is not None and not isinstance(value, (dict, list)):
            shown = repr(value)
            got = f" (got {shown[:60] + '...' if len(shown) > 60 else shown})"
        super().__init__(f"{where}: {what}{message}{got}")


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse one YAML file; return the data and its node tree (for line numbers)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataFileError(path, f"cannot read file: {e.strerror or e}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise DataFileError(
            path, f"file is {len(raw)} bytes, more than the {MAX_FILE_BYTES} allowed; split it"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataFileError(
            path, f"not UTF-8 text (bad byte at offset {e.start}); save the file as UTF-8"
        ) from None
    if not text.strip():
        raise DataFileError(path, "file is empty; expected a YAML mapping")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise DataFileError(
            path, f"invalid YAML: {problem}", line=mark.line + 1 if mark else None
        ) from None
    return data, node


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a line number."""
    best = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                    nxt = v
                    best = k.start_mark.line + 1
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if key < len(node.value):
                node = node.value[key]
                best = node.start_mark.line + 1
            else:
                node = None
        else:
            break
        if node is None:
            break
    return best


def validation_error(
    path: Path, err: ValidationError, node: yaml.Node | None, data: Any
) -> DataFileError:
    """Turn the first pydantic error into a one-line DataFileError."""
    first = err.errors()[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    field = ".".join(str(p) for p in loc) or None
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "enum" and "expected" in first.get("ctx", {}):
        msg = f"not allowed; expected {first['ctx']['expected']}"
    elif first["type"] == "extra_forbidden":
        msg = "unknown field; remove it or check its spelling"
    value = first.get("input") if first["type"] != "missing" else None
    more = len(err.errors()) - 1
    if more:
        msg += f" (and {more} more error{'s' if more > 1 else ''})"
    return DataFileError(path, msg, line=_line_of(node, loc), field=field, value=value)


def load_model(path: Path, model: type[M]) -> M:
    """Load one YAML file as ``model``; raise DataFileError on any problem."""
    data, node = read_yaml(path)
    if not isinstance(data, dict):
        raise DataFileError(path, f"expected a YAML mapping at the top, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise validation_error(path, e, node, data) from None


def dump_yaml(data: Any) -> str:
    """YAML for people: keys in the order given, unicode kept, block style."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def iter_yaml_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every YAML file under the given files and folders, sorted within each folder."""
    for p in paths:
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.suffix in YAML_SUFFIXES and q.is_file())
        elif p.exists():
            yield p
        else:
            raise DataFileError(p, "no such file or folder")
