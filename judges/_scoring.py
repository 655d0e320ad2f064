"""Scoring maths shared by the CLI, reports and the TUI. Unscored verdicts are left out."""

from __future__ import annotations

from collections.abc import Sequence

from scenarios import Criterion
from simulator.schemas import Verdict


def episode_score(verdicts: Sequence[Verdict]) -> float | None:
    """HealthBench score: points of met criteria / positive points, over scored criteria.

    Can be below 0 (negative criteria met). None when no positive criterion was scored.
    """
    scored = [v for v in verdicts if v.status != "unscored"]
    positive = sum(v.points for v in scored if v.points > 0)
    if positive == 0:
        return None
    return sum(v.points for v in scored if v.status == "met") / positive


def critical_pass(verdicts: Sequence[Verdict], rubric: Sequence[Criterion]) -> bool | None:
    """Every critical positive criterion met and no critical negative one met.

    None when a critical criterion is unscored (the answer is not known), or there is none.
    """
    by_id = {v.criterion_id: v for v in verdicts}
    critical = [c for c in rubric if c.critical]
    if not critical:
        return None
    for c in critical:
        v = by_id.get(c.id)
        if v is None or v.status == "unscored":
            return None
    return all((by_id[c.id].status == "met") == (c.points > 0) for c in critical)


def unscored_count(verdicts: Sequence[Verdict]) -> int:
    return sum(1 for v in verdicts if v.status == "unscored")
