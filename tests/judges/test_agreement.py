"""Rater agreement against a textbook case, degenerate cases and scikit-learn."""

from __future__ import annotations

import math
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judges._agreement import Agreement, agreement

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def test_textbook_case() -> None:
    pairs = [(True, True)] * 20 + [(True, False)] * 5 + [(False, True)] * 10 + [(False, False)] * 15
    ag = agreement(pairs)
    assert ag.n == 50
    assert ag.accuracy == pytest.approx(0.7)
    # p_o = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5 -> kappa = (0.7 - 0.5) / (1 - 0.5)
    assert ag.kappa == pytest.approx(0.4)
    # B is the truth: yes F1 = 40 / 55, no F1 = 30 / 45
    assert ag.macro_f1 == pytest.approx((40 / 55 + 30 / 45) / 2)
    assert ag.to_dict() == {"n": 50, "accuracy": 0.7, "macro_f1": 0.697, "kappa": 0.4}


def test_empty() -> None:
    assert agreement([]) == Agreement(0, None, None, None)
    assert agreement([]).to_dict() == {"n": 0, "accuracy": None, "macro_f1": None, "kappa": None}


def test_one_and_the_same_class_throughout_has_no_kappa() -> None:
    for label in (True, False):
        ag = agreement([(label, label)] * 4)
        assert ag == Agreement(4, 1.0, 1.0, None)


def test_complete_disagreement() -> None:
    assert agreement([(True, False)] * 3) == Agreement(3, 0.0, 0.0, 0.0)
    assert agreement([(False, True)]) == Agreement(1, 0.0, 0.0, 0.0)


def test_perfect_agreement_on_both_classes() -> None:
    assert agreement([(True, True), (False, False), (True, True)]) == Agreement(3, 1.0, 1.0, 1.0)


def test_a_class_never_true_counts_f1_zero() -> None:
    # A always yes, B yes once: the "no" class is never predicted, so its F1 is 0.
    ag = agreement([(True, True), (True, False)])
    assert ag.accuracy == 0.5
    assert ag.macro_f1 == pytest.approx((2 / 3 + 0) / 2)
    assert ag.kappa == pytest.approx(0.0)


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60))
def test_matches_scikit_learn(pairs: list[tuple[bool, bool]]) -> None:
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        accuracy = float(sklearn_metrics.accuracy_score(b, a))
        macro_f1 = float(sklearn_metrics.f1_score(b, a, average="macro"))
        kappa = float(sklearn_metrics.cohen_kappa_score(a, b))
    ag = agreement(pairs)
    assert ag.n == len(pairs)
    assert ag.accuracy == pytest.approx(accuracy, abs=1e-12)
    assert ag.macro_f1 == pytest.approx(macro_f1, abs=1e-12)
    if math.isnan(kappa):
        assert ag.kappa is None
    else:
        assert ag.kappa == pytest.approx(kappa, abs=1e-12)
