"""Assembling the saved transcript from the graph's state, and reading a saved result back."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from scenarios import Scenario
from simulator.grader_address import FLAG as GRADER_FLAG
from simulator.grader_address import addresses_grader
from simulator.llm import ModelConfig
from simulator.schemas import ErrorRecord, ModelInfo, RoleUsage, Termination, Transcript, Turn

if TYPE_CHECKING:
    from pathlib import Path

    from simulator.schemas import EpisodeResult
    from simulator.state import EpisodeContext


def role_seed(seed: int, role: str) -> int:
    """A stable per-role seed derived from the episode seed."""
    digest = hashlib.sha256(f"{seed}:{role}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def scenario_hash(scenario: Scenario) -> str:
    return hashlib.sha256(scenario.model_dump_json().encode()).hexdigest()


def model_info(cfg: ModelConfig) -> ModelInfo:
    return ModelInfo.model_validate(cfg.public())


def transcript_from_state(
    state: Any,
    ctx: EpisodeContext,
    *,
    episode_id: str,
    started_at: str,
    duration_s: float,
    forked_from: str | None = None,
) -> Transcript:
    turns = [Turn.model_validate(t) for t in state.get("turns") or []]
    usage = {"patient": RoleUsage(), "clinician": RoleUsage()}
    for t in turns:
        if t.call is not None:
            usage[t.role].add(t.call)
    return Transcript(
        episode_id=episode_id,
        scenario_id=ctx.scenario.id,
        scenario_hash=scenario_hash(ctx.scenario),
        persona=ctx.persona,
        turns=turns,
        termination=Termination(state.get("termination") or Termination.STOPPED_BY_USER.value),
        models={
            "patient": model_info(ctx.patient.config),
            "clinician": model_info(ctx.clinician.config),
        },
        seeds={
            "patient": role_seed(ctx.seed, "patient"),
            "clinician": role_seed(ctx.seed, "clinician"),
        },
        usage=usage,  # type: ignore[arg-type]
        errors=[ErrorRecord.model_validate(e) for e in state.get("errors") or []],
        disclosed=list(state.get("disclosed") or []),
        judge_directed_turns=[t.index for t in turns if GRADER_FLAG in t.flags],
        forked_from=forked_from,
        started_at=started_at,
        duration_s=round(duration_s, 3),
    )


def flag_judge_directed(transcript: Transcript) -> Transcript:
    """Re-run the judge-directed-text check on a saved transcript's clinician turns."""
    turns = []
    for t in transcript.turns:
        flags = [f for f in t.flags if f != GRADER_FLAG]
        if t.role == "clinician" and t.source != "opening" and addresses_grader(t.content):
            flags.append(GRADER_FLAG)
        turns.append(t.model_copy(update={"flags": flags}))
    return transcript.model_copy(
        update={
            "turns": turns,
            "judge_directed_turns": [t.index for t in turns if GRADER_FLAG in t.flags],
        }
    )


# Largest result file read (bytes), checked before reading: a 100-turn transcript at the
# longest replies is far below it.
MAX_RESULT_BYTES = 50_000_000


def load_result(path: Path) -> EpisodeResult:
    """A result file as written by ``clinsim run``; DataFileError (one line naming the file,
    and the line or field where known) for anything else."""
    import re

    from pydantic import ValidationError

    from scenarios.yamlio import DataFileError, read_text
    from simulator.schemas import EpisodeResult

    expected = "expected a result JSON file written by 'clinsim run'"
    text = read_text(path, limit=MAX_RESULT_BYTES, hint=expected)
    if not text.strip():
        raise DataFileError(path, f"file is empty; {expected}")
    try:
        return EpisodeResult.model_validate_json(text)
    except ValidationError as e:
        err = e.errors()[0]
        msg = str(err["msg"])
        if err["type"] == "json_invalid":
            at = re.search(r"at line (\d+)", msg)
            raise DataFileError(
                path,
                f"not a clinsim result: {msg}; {expected}",
                line=int(at.group(1)) if at else None,
            ) from None
        where = ".".join(map(str, err["loc"])) or "(top level)"
        raise DataFileError(path, f"not a clinsim result: {where}: {msg}; {expected}") from None
