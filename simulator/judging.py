"""The Judge protocol. The graph and the runner take a judge as an argument; they never import
``judges`` (the CLI, the composition root, wires a concrete one in)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from scenarios import Scenario
from simulator.schemas import JudgeOutput, Transcript


@runtime_checkable
class Judge(Protocol):
    """Scores one transcript against its scenario's rubric."""

    async def judge(self, scenario: Scenario, transcript: Transcript) -> JudgeOutput: ...
