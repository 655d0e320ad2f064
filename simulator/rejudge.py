"""Judging saved transcripts again, without re-simulating: each result against its scenario's
current rubric, with the judge-directed-text check run again, written as soon as it is judged.

No terminal output here: the caller renders progress from ``on_scored``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scenarios import Scenario
    from simulator.judging import Judge
    from simulator.schemas import EpisodeResult


async def rejudge(
    judge: Judge,
    results: Sequence[tuple[Path, EpisodeResult]],
    scenarios: Mapping[str, Scenario],
    targets: Sequence[Path],
    *,
    concurrency: int = 4,
    on_scored: Callable[[Path, EpisodeResult], None] | None = None,
) -> list[dict[str, Any]]:
    """Judge every ``(source, result)`` and write the re-judged result to its target (readable
    by the user only). One summary row per result, in the order given; ``on_scored`` is called
    with the source and the re-judged result as each one finishes."""
    from simulator.config import write_private
    from simulator.record import flag_judge_directed

    limit = asyncio.Semaphore(concurrency)
    rows: list[dict[str, Any]] = []

    async def one(src: Path, result: EpisodeResult, dst: Path) -> None:
        transcript = flag_judge_directed(result.transcript)
        async with limit:
            output = await judge.judge(scenarios[transcript.scenario_id], transcript)
        rejudged = result.model_copy(update={"transcript": transcript}).with_judgement(output)
        write_private(dst, rejudged.model_dump_json(indent=2))  # written as soon as judged
        rows.append(
            {
                "file": str(src),
                "out": str(dst),
                "scenario_id": transcript.scenario_id,
                "score": rejudged.score,
                "critical_pass": rejudged.critical_pass,
                "unscored": rejudged.unscored,
                "criteria": len(rejudged.verdicts),
                "judge_directed_turns": transcript.judge_directed_turns,
                "agreement": rejudged.agreement,
                "disputed": rejudged.disputed,
            }
        )
        if on_scored is not None:
            on_scored(src, rejudged)

    await asyncio.gather(*(one(f, r, t) for (f, r), t in zip(results, targets, strict=True)))
    order = {str(f): n for n, (f, _) in enumerate(results)}
    return sorted(rows, key=lambda r: order[r["file"]])
