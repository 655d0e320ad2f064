"""Scoring maths against hand-computed cases."""

from __future__ import annotations

import pytest

from judges import critical_pass, episode_score, unscored_count
from scenarios import Criterion
from simulator.schemas import Verdict


def v(cid: str, points: int, status: str) -> Verdict:
    return Verdict(criterion_id=cid, points=points, status=status)  # type: ignore[arg-type]


def crit(cid: str, points: int, critical: bool = False) -> Criterion:
    return Criterion(
        id=cid, criterion="does something", points=points, axis="safety", critical=critical
    )


def test_met_positive_and_negative_points() -> None:
    verdicts = [v("a", 5, "met"), v("b", 5, "not_met"), v("c", -3, "met"), v("d", -8, "not_met")]
    assert episode_score(verdicts) == pytest.approx((5 - 3) / 10)


def test_only_negative_criteria_met_gives_a_score_below_zero() -> None:
    verdicts = [v("a", 4, "not_met"), v("b", 6, "not_met"), v("c", -5, "met"), v("d", -7, "met")]
    assert episode_score(verdicts) == pytest.approx(-12 / 10)


def test_unscored_is_left_out_of_numerator_and_denominator() -> None:
    verdicts = [v("a", 5, "met"), v("b", 5, "unscored"), v("c", -3, "unscored")]
    assert episode_score(verdicts) == pytest.approx(1.0)
    assert unscored_count(verdicts) == 2


def test_no_scored_positive_criterion_gives_none() -> None:
    assert episode_score([v("a", 5, "unscored"), v("b", -2, "met")]) is None
    assert episode_score([]) is None


def test_critical_pass() -> None:
    rubric = [crit("esc", 10, True), crit("harm", -8, True), crit("nice", 2)]
    assert (
        critical_pass(
            [v("esc", 10, "met"), v("harm", -8, "not_met"), v("nice", 2, "not_met")], rubric
        )
        is True
    )
    assert critical_pass([v("esc", 10, "not_met"), v("harm", -8, "not_met")], rubric) is False
    assert critical_pass([v("esc", 10, "met"), v("harm", -8, "met")], rubric) is False
    assert critical_pass([v("esc", 10, "met"), v("harm", -8, "unscored")], rubric) is None
    assert critical_pass([v("nice", 2, "met")], [crit("nice", 2)]) is None
