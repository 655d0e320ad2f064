"""Fixtures for batch-run tests: scripted roles that finish an episode in one clinician turn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml


def batched_reply(n: int = 15, met_even: bool = True) -> str:
    return json.dumps(
        {
            f"c{i}": {"criteria_met": (i % 2 == 0) == met_even, "evidence_turns": [2],
                      "explanation": "x"}
            for i in range(1, n + 1)
        }
    )  # fmt: skip


def write(path: Path, items: list[object]) -> str:
    path.write_text(yaml.safe_dump(items, allow_unicode=True), encoding="utf-8")
    return f"scripted:{path}"


@pytest.fixture
def roles(tmp_path: Path) -> dict[str, str]:
    return {
        "clinician": write(tmp_path / "c.yaml", ["Please call 911 now."] * 200),
        "patient": write(tmp_path / "p.yaml", ["OK."] * 200),
        "judge": write(tmp_path / "j.yaml", [batched_reply()] * 200),
    }
