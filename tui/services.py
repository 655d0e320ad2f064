"""What the UI is given by the composition root (``clinsim tui``): libraries, the run store,
default model specs, and factories for backends and judges. The UI never builds a judge
itself, so it never depends on the judges package."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from personas import PersonaLibrary
from scenarios import ScenarioLibrary
from simulator.defaults import DEFAULT_JUDGE_MODE, DEFAULT_SPEC
from simulator.judging import Judge
from simulator.llm import ChatBackend, ModelConfig

JudgeFactory = Callable[[ModelConfig, str, int], tuple[Judge, list[ChatBackend]]]


def default_reviewer() -> str:
    return os.environ.get("CLINSIM_REVIEWER") or os.environ.get("USER") or "reviewer"


@dataclass
class Services:
    """Everything the screens need from outside the UI."""

    scenarios: ScenarioLibrary
    personas: PersonaLibrary
    store_path: Path
    make_backend: Callable[[ModelConfig], ChatBackend]
    make_judge: JudgeFactory | None = None
    specs: dict[str, str] = field(
        default_factory=lambda: {
            "clinician": DEFAULT_SPEC,
            "patient": DEFAULT_SPEC,
            "judge": DEFAULT_SPEC,
        }
    )
    judge_mode: str = DEFAULT_JUDGE_MODE
    episodes_dir: Path | None = None
    reviewer: str = field(default_factory=default_reviewer)
    batch_command: list[str] = field(
        default_factory=lambda: [sys.executable, "-m", "simulator.cli", "batch"]
    )
    extra_batch_args: list[str] = field(default_factory=list)
