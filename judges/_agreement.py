"""Agreement between two raters on binary labels (e.g. a model grader against a physician).

Accuracy, macro-F1 and Cohen's kappa, defined exactly as scikit-learn's ``accuracy_score``,
``f1_score(average="macro")`` and ``cohen_kappa_score``. Pure python and stdlib.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


@dataclass(frozen=True)
class Agreement:
    """How well rater A agrees with rater B on n binary labels; None where undefined."""

    n: int
    accuracy: float | None
    macro_f1: float | None
    kappa: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        """{"n", "accuracy", "macro_f1", "kappa"} with the floats rounded to 4 decimal places."""
        return {
            "n": self.n,
            "accuracy": _rounded(self.accuracy),
            "macro_f1": _rounded(self.macro_f1),
            "kappa": _rounded(self.kappa),
        }


def agreement(pairs: Iterable[tuple[bool, bool]]) -> Agreement:
    """Agreement of rater A (first) with rater B (second) on binary labels.

    accuracy: share of pairs where A == B. macro_f1: B taken as the truth and A as the
    prediction, the unweighted mean over the classes present in either list of
    F1 = 2 TP / (2 TP + FP + FN) (a class with undefined precision or recall counts 0, as
    scikit-learn's default does). kappa: Cohen's kappa, 1 - observed / expected disagreement,
    the expectation from each rater's own label frequencies; None when the expected
    disagreement is 0 (both raters used one and the same class throughout; scikit-learn gives
    nan). n == 0 -> all None.
    """
    tp = fp = fn = tn = 0  # with True as the positive class
    for a, b in pairs:
        if a and b:
            tp += 1
        elif a:
            fp += 1
        elif b:
            fn += 1
        else:
            tn += 1
    n = tp + fp + fn + tn
    if n == 0:
        return Agreement(0, None, None, None)

    accuracy = (tp + tn) / n

    f1s: list[float] = []
    if tp + fp + fn > 0:  # True occurs in A or in B
        f1s.append(2 * tp / (2 * tp + fp + fn))
    if tn + fn + fp > 0:  # False occurs in A or in B (TP and TN swap roles)
        f1s.append(2 * tn / (2 * tn + fn + fp))
    macro_f1 = sum(f1s) / len(f1s)

    a_true, b_true = tp + fp, tp + fn
    # Expected disagreements times n: chance that A says True and B False, or the reverse.
    expected = a_true * (n - b_true) + (n - a_true) * b_true
    kappa = None if expected == 0 else 1.0 - (fp + fn) * n / expected
    return Agreement(n, accuracy, macro_f1, kappa)
