"""Run configuration: a YAML or TOML file that sets each role's model and the episode's limits.
Command-line flags override it."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scenarios.yamlio import MAX_FILE_BYTES, DataFileError, parse_yaml, read_text, validation_error
from simulator.defaults import (
    DEFAULT_ERROR_BUDGET,
    DEFAULT_JUDGE_MODE,
    DEFAULT_MIN_TURNS,
    DEFAULT_SEED,
    MIN_TIMEOUT_S,
    ROLE_DEFAULTS,
)
from simulator.llm import ModelConfig, RetryPolicy


@dataclass(frozen=True)
class EpisodeLimits:
    """How long an episode may go on and how much failure it absorbs: the same for one
    episode (``clinsim run``, the TUI) and for every episode of a batch."""

    max_turns: int | None = None  # most clinician turns; None: the scenario's own limit
    min_turns: int = DEFAULT_MIN_TURNS  # end markers before this many clinician turns are ignored
    timeout_s: float | None = None  # whole-episode time limit
    error_budget: int = DEFAULT_ERROR_BUDGET
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def resolve_limits(
    file: RunConfig | None,
    *,
    max_turns: int | None = None,
    min_turns: int | None = None,
    timeout_s: float | None = None,
    error_budget: int | None = None,
    retry: RetryPolicy | None = None,
) -> EpisodeLimits:
    """Flags over the config file over the defaults (a flag of None or 0 is not given)."""
    file = file or RunConfig()
    budget = error_budget if error_budget is not None else file.error_budget
    return EpisodeLimits(
        max_turns=max_turns or file.max_turns,
        min_turns=min_turns or file.min_turns or DEFAULT_MIN_TURNS,
        timeout_s=timeout_s or file.timeout_s,
        error_budget=DEFAULT_ERROR_BUDGET if budget is None else budget,
        retry=retry or RetryPolicy(),
    )


def resolve_seed(flag: int | None, file: RunConfig | None) -> int:
    """The episode (or run) seed: the flag, else the config file's, else the default."""
    if flag is not None:
        return flag
    return file.seed if file is not None and file.seed is not None else DEFAULT_SEED


def resolve_judge_mode(flag: str | None, file: RunConfig | None) -> str:
    """The judge mode: the flag, else the config file's, else the default."""
    return flag or (file.judge_mode if file is not None else None) or DEFAULT_JUDGE_MODE


class RunConfig(BaseModel):
    """What ``--config`` may set. Every field is optional; flags override."""

    model_config = ConfigDict(extra="forbid")

    clinician: ModelConfig | None = None
    patient: ModelConfig | None = None
    judge: ModelConfig | None = None
    scenario: str | None = None
    persona: str | None = None
    max_turns: int | None = Field(default=None, ge=1, le=100)
    min_turns: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="End markers before this many clinician turns are ignored.",
    )
    seed: int | None = None
    timeout_s: float | None = Field(
        default=None,
        ge=MIN_TIMEOUT_S,
        allow_inf_nan=False,
        description="Whole-episode time limit (s).",
    )
    error_budget: int | None = Field(default=None, ge=0)
    judge_mode: Literal["per-criterion", "batched"] | None = None
    scenarios_dir: list[Path] = Field(default_factory=list)
    personas_dir: list[Path] = Field(default_factory=list)

    @field_validator("clinician", "patient", "judge", mode="before")
    @classmethod
    def _spec_shorthand(cls, v: object) -> object:
        return {"spec": v} if isinstance(v, str) else v


class ConfigFileError(ValueError):
    """A run config that cannot be used; one line."""


def load_run_config(path: Path) -> RunConfig:
    """Read ``--config``: TOML for a ``.toml`` file, else YAML. Any problem is a
    ConfigFileError whose one line says the file (and the line and field, where known), what
    is wrong and what to do."""
    if not path.exists():
        raise ConfigFileError(f"{path}: config file not found; check the --config path")
    toml = path.suffix == ".toml"
    node = None
    empty = (
        "config file is empty; set at least one field (e.g. 'clinician: openai:MODEL') "
        "or leave out --config"
    )
    try:
        text = read_text(
            path, limit=MAX_FILE_BYTES, hint="a run config is a few lines: check the path"
        )
        if not text.strip():
            raise DataFileError(path, empty)
        if toml:
            try:
                data: Any = tomllib.loads(text)
            except tomllib.TOMLDecodeError as e:
                at = re.search(r"at line (\d+)", str(e))
                raise DataFileError(
                    path, f"not valid TOML: {e}", line=int(at.group(1)) if at else None
                ) from None
            except ValueError:  # an integer of more than 4300 digits
                raise DataFileError(path, "not valid TOML: a number too long to read") from None
            except RecursionError:
                raise DataFileError(path, "not valid TOML: nested too deeply") from None
        else:
            data, node = parse_yaml(path, text)
        if data is None or data == {}:  # comments only
            raise DataFileError(path, empty)
        if not isinstance(data, dict):
            raise DataFileError(
                path,
                f"expected a mapping of settings at the top level, got {type(data).__name__}; "
                "e.g. 'clinician: openai:MODEL'",
            )
        try:
            return RunConfig.model_validate(data)
        except ValidationError as e:
            raise validation_error(path, e, node, data) from None
    except DataFileError as e:
        raise ConfigFileError(str(e)) from None


def role_config(role: str, from_file: ModelConfig | None, overrides: dict[str, Any]) -> ModelConfig:
    """The role's defaults, then the config file, then the flags that were given."""
    data = dict(ROLE_DEFAULTS[role])
    if from_file is not None:
        data.update(from_file.model_dump(exclude_unset=True))
        if from_file.api_key is not None:
            data["api_key"] = from_file.api_key
    data.update({k: v for k, v in overrides.items() if v is not None})
    return ModelConfig.model_validate(data)


def data_home() -> Path:
    """Where results go by default: $CLINSIM_HOME, else $XDG_DATA_HOME/clinsim, else
    ~/.local/share/clinsim."""
    if os.environ.get("CLINSIM_HOME"):
        return Path(os.environ["CLINSIM_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "clinsim"


def episode_path(scenario_id: str, episode_id: str, folder: Path | None = None) -> Path:
    """Where a single episode's result goes by default: ``$CLINSIM_HOME/episodes/`` (or
    ``folder``), named by time, scenario and episode id."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return (folder or data_home() / "episodes") / f"{stamp}-{scenario_id}-{episode_id}.json"


def private_dir(path: Path) -> Path:
    """Make a folder and any missing parents, each readable by the owner only (0700)."""
    missing = []
    for p in (path, *path.parents):
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        p.mkdir(mode=0o700, exist_ok=True)
    return path


def write_private(path: Path, text: str) -> None:
    """Write atomically, readable by the owner only (results can hold health data).

    A path that exists and is not a regular file (``/dev/null``, ``/dev/stdout``, a FIFO) is
    written to directly: renaming over it would replace the device with a file. Temporary
    files that a killed earlier write of the same target left behind are removed first."""
    if path.exists() and not path.is_file() and not path.is_dir():
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return
    private_dir(path.parent)
    _remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_stale_temporaries(path: Path) -> None:
    """Remove ``.NAME.tmp-PID`` files beside ``path`` whose process is gone (a ``kill -9``
    during a write): they hold what was being written, health data included."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.rpartition("-")[2]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass  # another user's live process


def check_writable(path: Path, option: str = "--out") -> str | None:
    """Why ``path`` cannot take a file, or None: checked before the work, so that a long run
    is not lost to a bad destination at its end."""
    if path.is_dir():
        return f"{option} {path} is a folder; give the path of a file in it"
    if path.exists() and not path.is_file():
        return None  # a device or FIFO: written to directly
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{option} {path}: {parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{option} {path}: cannot write in {parent}; choose another place"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{option} {path}: the file is not writable; choose another path"
    return None
