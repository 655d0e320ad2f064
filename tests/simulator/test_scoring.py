"""Scoring maths against hand-computed cases."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judges import critical_pass, episode_score, unscored_count
from scenarios import Criterion
from simulator.schemas import Verdict
from simulator.scoring import (
    Estimate,
    Paired,
    _quantile,
    aggregate,
    axis_scores,
    clip01,
    episode_passed,
    group_aggregate,
    paired_difference,
    pass_hat_k,
)


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


# --- axis scores --------------------------------------------------------------------------


def axis_crit(cid: str, points: int, axis: str | None) -> Criterion:
    if axis is None:  # the schema requires an axis; build one without it, unvalidated
        return Criterion.model_construct(
            id=cid, criterion="does something", points=points, axis=None, critical=False
        )
    return Criterion(id=cid, criterion="does something", points=points, axis=axis)  # type: ignore[arg-type]


def test_axis_scores_on_a_mixed_rubric() -> None:
    rubric = [
        axis_crit("a1", 5, "accuracy"),
        axis_crit("a2", 5, "accuracy"),
        axis_crit("a3", -2, "accuracy"),
        axis_crit("s1", 4, "safety"),
        axis_crit("s2", -6, "safety"),
        axis_crit("s3", 4, "safety"),
        axis_crit("e1", -3, "empathy"),  # only negative criteria -> None
        axis_crit("c1", 2, "communication"),  # only positive one unscored -> None
        axis_crit("k1", 3, "completeness"),  # no verdict at all -> None
        axis_crit("x1", 10, None),  # no axis: left out
    ]
    verdicts = [
        v("a1", 5, "met"),
        v("a2", 5, "not_met"),
        v("a3", -2, "met"),
        v("s1", 4, "met"),
        v("s2", -6, "not_met"),
        v("s3", 4, "unscored"),
        v("e1", -3, "met"),
        v("c1", 2, "unscored"),
        v("x1", 10, "met"),
        v("ghost", 10, "met"),  # not in the rubric: ignored
    ]
    scores = axis_scores(verdicts, rubric)
    assert list(scores) == ["accuracy", "communication", "completeness", "empathy", "safety"]
    assert scores["accuracy"] == pytest.approx((5 - 2) / 10)
    assert scores["safety"] == pytest.approx(4 / 4)
    assert scores["empathy"] is None
    assert scores["communication"] is None
    assert scores["completeness"] is None
    assert axis_scores([], []) == {}


def test_met_negative_criteria_score_below_zero_and_aggregate_clips_to_zero() -> None:
    verdicts = [v("a", 4, "not_met"), v("b", 6, "not_met"), v("c", -5, "met")]
    score = episode_score(verdicts)
    assert score == pytest.approx(-0.5)
    assert aggregate([score]) == Estimate(1, 0.0, 0.0, 0.0)


def test_clip01_both_sides() -> None:
    assert clip01(-0.3) == 0.0
    assert clip01(1.7) == 1.0
    assert clip01(0.42) == 0.42
    assert clip01(0.0) == 0.0
    assert clip01(1.0) == 1.0


# --- aggregate ----------------------------------------------------------------------------


def test_quantile_is_linear_interpolation_between_order_statistics() -> None:
    xs = [0.0, 10.0, 20.0, 30.0]
    assert _quantile(xs, 0.0) == 0.0
    assert _quantile(xs, 1.0) == 30.0
    assert _quantile(xs, 0.5) == pytest.approx(15.0)
    assert _quantile(xs, 0.25) == pytest.approx(7.5)
    assert _quantile([4.0], 0.3) == 4.0


def test_aggregate_hand_computed() -> None:
    est = aggregate([0.2, 0.4, 0.9, None, -0.5, 1.0])
    # None left out; -0.5 clipped to 0: (0.2 + 0.4 + 0.9 + 0 + 1.0) / 5
    assert est.n == 5
    assert est.mean == pytest.approx(2.5 / 5)
    assert est.mean is not None and est.low is not None and est.high is not None
    assert 0.0 <= est.low <= est.mean <= est.high <= 1.0
    assert est.low < est.high


def test_bootstrap_is_reproducible_with_a_seed() -> None:
    values = [0.2, 0.4, 0.9, 0.1, 0.0, 1.0, 0.7, 0.55]
    assert aggregate(values, seed=1) == aggregate(values, seed=1)
    assert aggregate(values, seed=1) != aggregate(values, seed=2)
    assert aggregate(values, seed=1).mean == aggregate(values, seed=2).mean


def test_ci_narrows_with_more_data() -> None:
    rng = random.Random(7)
    small = aggregate([rng.random() for _ in range(20)])
    large = aggregate([rng.random() for _ in range(2000)])
    assert small.low is not None and small.high is not None
    assert large.low is not None and large.high is not None
    assert large.high - large.low < (small.high - small.low) / 4


def test_ci_width_is_about_right() -> None:
    # 100 Bernoulli(0.5) values: standard error 0.05, so a 95% interval about 0.2 wide.
    est = aggregate([0.0, 1.0] * 50)
    assert est.low is not None and est.high is not None
    assert est.low < 0.5 < est.high
    assert 0.15 < est.high - est.low < 0.25
    narrow = aggregate([0.0, 1.0] * 50, level=0.5)
    assert narrow.low is not None and narrow.high is not None
    assert est.low <= narrow.low < narrow.high <= est.high


def test_aggregate_empty_and_single() -> None:
    assert aggregate([]) == Estimate(0, None, None, None)
    assert aggregate([None, None]) == Estimate(0, None, None, None)
    assert aggregate([0.7]) == Estimate(1, 0.7, 0.7, 0.7)
    assert aggregate([None, 1.3]) == Estimate(1, 1.0, 1.0, 1.0)
    assert aggregate([0.3, 0.3, 0.3]) == Estimate(3, 0.3, 0.3, 0.3)


def test_aggregate_validates_arguments() -> None:
    with pytest.raises(ValueError):
        aggregate([0.5], n_boot=0)
    for level in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            aggregate([0.5], level=level)


def test_estimate_to_dict_rounds() -> None:
    assert Estimate(3, 1 / 3, 0.1, 0.56789).to_dict() == {
        "n": 3,
        "mean": 0.3333,
        "low": 0.1,
        "high": 0.5679,
    }
    assert Estimate(0, None, None, None).to_dict() == {
        "n": 0,
        "mean": None,
        "low": None,
        "high": None,
    }


@settings(max_examples=100, deadline=None)
@given(
    scores=st.lists(
        st.none() | st.floats(min_value=-2.0, max_value=2.0, allow_nan=False), max_size=40
    ),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_aggregate_mean_lies_in_unit_interval_and_in_its_ci(
    scores: list[float | None], seed: int
) -> None:
    est = aggregate(scores, seed=seed, n_boot=200)
    assert est.n == sum(1 for s in scores if s is not None)
    if est.n == 0:
        assert est == Estimate(0, None, None, None)
        return
    assert est.mean is not None and est.low is not None and est.high is not None
    assert 0.0 <= est.low <= est.mean <= est.high <= 1.0


# --- group_aggregate ----------------------------------------------------------------------


def test_group_aggregate() -> None:
    items = [("b", 0.5), ("a", 1.0), ("b", None), ("a", 0.0), ("c", None), ("a", 0.5)]
    groups = group_aggregate(items, seed=3, n_boot=500)
    assert list(groups) == ["a", "b", "c"]
    assert groups["a"] == aggregate([1.0, 0.0, 0.5], seed=3, n_boot=500)
    assert groups["a"].mean == pytest.approx(0.5)
    assert groups["b"] == Estimate(1, 0.5, 0.5, 0.5)
    assert groups["c"] == Estimate(0, None, None, None)
    assert group_aggregate([]) == {}


def test_group_aggregate_sorts_keys_by_their_text() -> None:
    assert list(group_aggregate([(9, 0.1), (10, 0.2), (1, 0.3)])) == [1, 10, 9]


# --- episode_passed and pass^k ------------------------------------------------------------


def test_episode_passed() -> None:
    assert episode_passed(0.5, True) is True
    assert episode_passed(0.49, True) is False
    assert episode_passed(0.9, False) is False
    assert episode_passed(0.9, None) is True
    assert episode_passed(None, True) is None
    assert episode_passed(None, None) is None
    assert episode_passed(0.7, True, threshold=0.8) is False
    assert episode_passed(-0.2, None, threshold=0.0) is False


def test_pass_hat_k_hand_computed() -> None:
    trials: dict[str, list[bool | None]] = {
        "A": [True, True, True, False],
        "B": [True, True, True, True],
        "C": [True, None, None],  # one known trial: too few for k = 2
        "D": [None, None],
    }
    # A: C(3,2)/C(4,2) = 3/6 = 0.5; B: 1; C and D left out.
    assert pass_hat_k(trials, 2) == pytest.approx(0.75)
    # A: C(3,3)/C(4,3) = 1/4; B: 1.
    assert pass_hat_k(trials, 3) == pytest.approx(0.625)
    # k = 1: plain per-task pass rates 3/4, 1, 1 (D has no known trial).
    assert pass_hat_k(trials, 1) == pytest.approx((0.75 + 1 + 1) / 3)
    assert pass_hat_k(trials, 5) is None
    assert pass_hat_k({}, 1) is None
    assert pass_hat_k({"x": [False, False]}, 2) == 0.0


def test_pass_hat_1_equals_the_pass_rate() -> None:
    trials = {"t": [True, False, True, True, False]}
    assert pass_hat_k(trials, 1) == pytest.approx(3 / 5)


def test_pass_hat_k_rejects_k_below_one() -> None:
    with pytest.raises(ValueError):
        pass_hat_k({"A": [True]}, 0)


# --- paired_difference --------------------------------------------------------------------


def test_paired_difference_hand_computed() -> None:
    a = {"e1": 0.8, "e2": 0.5, "e3": 1.2, "e4": 0.3, "e5": None, "e6": 0.9}
    b = {"e1": 0.6, "e2": 0.7, "e3": 0.9, "e4": -0.2, "e5": 0.4, "e7": 0.1}
    # Shared e1..e4, clipped: 0.8-0.6, 0.5-0.7, 1.0-0.9, 0.3-0.0 = 0.2, -0.2, 0.1, 0.3
    p = paired_difference(a, b, seed=5)
    assert p.n == 4
    assert p.mean_diff == pytest.approx(0.4 / 4)
    assert p.only_a == 1  # e6 (e5 is None in a)
    assert p.only_b == 2  # e5, e7
    assert p.mean_diff is not None and p.low is not None and p.high is not None
    assert -0.2 - 1e-12 <= p.low <= p.mean_diff <= p.high <= 0.3 + 1e-12
    assert p == paired_difference(a, b, seed=5)
    assert p.to_dict() == {
        "n": 4,
        "mean_diff": 0.1,
        "low": round(p.low, 4),
        "high": round(p.high, 4),
        "only_a": 1,
        "only_b": 2,
    }


def test_paired_difference_degenerate() -> None:
    assert paired_difference({}, {}) == Paired(0, None, None, None, 0, 0)
    assert paired_difference({"x": 0.5}, {"y": 0.5}) == Paired(0, None, None, None, 1, 1)
    one = paired_difference({"x": 0.9, "y": None}, {"x": 0.4})
    assert one.n == 1 and one.only_a == 0 and one.only_b == 0
    assert one.mean_diff == pytest.approx(0.5)
    assert one.low == one.high == one.mean_diff
    with pytest.raises(ValueError):
        paired_difference({"x": 0.5}, {"x": 0.5}, n_boot=0)
    with pytest.raises(ValueError):
        paired_difference({"x": 0.5}, {"x": 0.5}, level=1.0)


def test_paired_difference_of_identical_models_is_zero() -> None:
    scores = {f"e{i}": (i % 7) / 6 for i in range(28)}
    assert paired_difference(scores, dict(scores)) == Paired(28, 0.0, 0.0, 0.0, 0, 0)
    # Against a model scoring 0 everywhere: the mean of (0/6 .. 6/6) is 0.5.
    versus_zero = paired_difference(scores, dict.fromkeys(scores, 0.0))
    assert versus_zero.mean_diff is not None
    assert math.isclose(versus_zero.mean_diff, 0.5)
