"""Reading YAML and JSONL data files with errors people can act on.

Shared by the scenario and persona loaders (and, through ``read_text`` and ``parse_yaml``, by
the run-config, price-table and result loaders; through ``read_jsonl``, by the importers and the
label readers). Errors carry the file, the line (from the YAML node marks or the JSONL line),
the field path, the bad value and the message, and print as one line.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

MAX_FILE_BYTES = 2_000_000
# Largest JSONL file read (bytes), checked before reading: far above the public data sets
# (HealthBench's full set is tens of MB), far below what would exhaust memory.
MAX_JSONL_BYTES = 200_000_000
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


def read_text(
    path: Path, *, limit: int = MAX_FILE_BYTES, hint: str = "split it", encoding: str = "utf-8"
) -> str:
    """A file's text; DataFileError when it cannot be read, is over ``limit`` bytes (checked
    before reading) or is not UTF-8. ``hint`` says what to do about a file that is too big;
    ``encoding`` "utf-8-sig" drops a leading byte-order mark."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would be read without end
            raise DataFileError(path, "not a regular file; give the path of a file")
        size = info.st_size
        if size > limit:
            raise DataFileError(
                path, f"file is {size} bytes, more than the {limit} allowed; {hint}"
            )
        raw = path.read_bytes()
    except OSError as e:
        raise DataFileError(path, f"cannot read file: {e.strerror or e}") from None
    if len(raw) > limit:  # it grew after the check
        raise DataFileError(
            path, f"file is {len(raw)} bytes, more than the {limit} allowed; {hint}"
        )
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataFileError(
            path,
            f"not UTF-8 text (bad byte at offset {e.start}); save the file as UTF-8",
            line=line,
        ) from None


@dataclass(frozen=True)
class Row:
    """One JSON object from a JSONL file, with its file and line for error messages."""

    path: Path
    line: int
    data: dict[str, Any]

    def error(
        self, message: str, *, field_name: str | None = None, value: Any = None
    ) -> DataFileError:
        return DataFileError(self.path, message, line=self.line, field=field_name, value=value)

    def get(self, key: str, kind: type | tuple[type, ...], *, required: bool = True) -> Any:
        """The value at ``key``; a DataFileError naming the line if missing or of a wrong type."""
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.error(f"missing '{key}'", field_name=key)
            return None
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            names = " or ".join(_type_name(t) for t in _as_tuple(kind))
            raise self.error(
                f"expected {names}, got {_type_name(type(value))}", field_name=key, value=value
            )
        return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _type_name(t: type) -> str:
    return {dict: "an object", list: "a list", str: "a string", int: "an integer"}.get(
        t, t.__name__
    )


def read_jsonl(path: Path) -> list[Row]:
    """Read a JSONL file: one JSON object a line; blank lines are ignored.

    Raises DataFileError (one line, with the line number) for an unreadable, empty or too
    large file, bytes that are not UTF-8, a line that is not valid JSON (or nests too deeply,
    or holds an integer too long to read), or a line that is not an object.
    """
    path = Path(path)
    text = read_text(path, limit=MAX_JSONL_BYTES, encoding="utf-8-sig")
    rows: list[Row] = []
    # Split on '\n' only: str.splitlines() would also split at U+2028 inside JSON strings.
    for n, line_text in enumerate(text.split("\n"), start=1):
        if not line_text.strip():
            continue
        try:
            data = json.loads(line_text)
        except json.JSONDecodeError as e:
            raise DataFileError(
                path,
                f"invalid JSON: {e.msg} at column {e.colno}; expected one object a line",
                line=n,
            ) from None
        except (ValueError, RecursionError) as e:  # an integer of >4300 digits; deep nesting
            why = (
                "nested too deeply"
                if isinstance(e, RecursionError)
                else "a number too long to read"
            )
            raise DataFileError(
                path, f"invalid JSON: {why}; expected one object a line", line=n
            ) from None
        if not isinstance(data, dict):
            raise DataFileError(
                path, f"expected a JSON object, got {_type_name(type(data))}", line=n
            )
        rows.append(Row(path, n, data))
    if not rows:
        raise DataFileError(path, "file is empty; expected one JSON object a line", line=1)
    return rows


# libyaml's parser where PyYAML was built with it: about seven times faster at loading the
# scenario library, which every command and the TUI's start do (bench/RESULTS.md).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader whose failures to build a value (``2020-13-45``, ``!!int abc``) are YAML
    errors with the value's position, like every other YAML error."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, ArithmeticError, LookupError) as e:
            shown = f" {node.value!r}" if isinstance(node, yaml.ScalarNode) else ""
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"cannot read{shown[:80]} as {node.tag.rsplit(':', 1)[-1]} ({e})",
                node.start_mark,
            ) from None


def parse_yaml(path: Path, text: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text read from ``path``; return the data and its node tree (for line
    numbers). Any problem is a DataFileError with the line where known."""
    loader = None
    try:
        loader = _Loader(text)  # rejects characters YAML does not allow, e.g. NUL
        node = loader.get_single_node()
        if node is not None:
            _check_nodes(path, node)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        raise _yaml_error(path, text, e) from None
    except RecursionError:
        raise DataFileError(path, "invalid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, node


# What a YAML file may expand to through aliases (``&a`` ... ``*a``), in characters of scalar
# text: a file under MAX_FILE_BYTES without aliases stays under it; an alias repeated
# thousands of times (a "billion laughs" file) does not.
MAX_EXPANDED_CHARS = 4 * MAX_FILE_BYTES


def _check_nodes(path: Path, root: yaml.Node) -> None:
    """Refuse what PyYAML accepts but clinsim must not: a key given twice in one mapping (the
    second would silently win) and aliases that expand the document past
    ``MAX_EXPANDED_CHARS``. The walk counts a shared node each time it is used, and stops as
    soon as the bound is passed, so it costs no more than the bound."""
    expanded = 0
    stack: list[yaml.Node] = [root]
    checked: set[int] = set()  # mappings whose keys were checked (an alias repeats them)
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            expanded += len(node.value) + 1
        elif isinstance(node, yaml.SequenceNode):
            expanded += 1
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            expanded += 1
            if id(node) not in checked:
                checked.add(id(node))
                seen: dict[str, int] = {}
                for key, _ in node.value:
                    if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
                        continue
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        raise DataFileError(
                            path,
                            f"key {key.value!r} appears twice in one mapping (first on line "
                            f"{seen[key.value]}); keep one",
                            line=line,
                        )
                    seen[key.value] = line
            for key, value in node.value:
                stack.append(key)
                stack.append(value)
        if expanded > MAX_EXPANDED_CHARS:
            raise DataFileError(
                path,
                f"expands to more than {MAX_EXPANDED_CHARS} characters through YAML aliases "
                "(&name ... *name); write the repeated text out once or shorten it",
            )


def _yaml_error(path: Path, text: str, e: yaml.YAMLError) -> DataFileError:
    if isinstance(e, yaml.reader.ReaderError):
        return DataFileError(
            path,
            f"invalid YAML: character #x{e.character:04x} is not allowed; remove it",
            line=text[: e.position].count("\n") + 1,
        )
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    context, start = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context and start and (mark is None or start.line != mark.line):
        problem += f" ({context} that starts on line {start.line + 1})"
    return DataFileError(path, f"invalid YAML: {problem}", line=mark.line + 1 if mark else None)


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse one YAML file; return the data and its node tree (for line numbers)."""
    text = read_text(path)
    if not text.strip():
        raise DataFileError(path, "file is empty; expected a YAML mapping")
    return parse_yaml(path, text)


def line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
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
    return DataFileError(path, msg, line=line_of(node, loc), field=field, value=value)


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
