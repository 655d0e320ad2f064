"""Scoring maths over verdicts, shared by the judges, reports, the CLI and the TUI. Unscored
verdicts are left out.

Besides the per-episode HealthBench score this module aggregates scores over episodes: means of
scores clipped to [0, 1] with percentile-bootstrap confidence intervals, pass^k over repeated
trials, and paired differences between two models on the same episodes. Pure python and stdlib.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from scenarios import Criterion
from simulator.schemas import Verdict

K = TypeVar("K", bound=Hashable)


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
    """Number of verdicts whose status is "unscored"."""
    return sum(1 for v in verdicts if v.status == "unscored")


def axis_scores(
    verdicts: Sequence[Verdict], rubric: Sequence[Criterion]
) -> dict[str, float | None]:
    """Per axis: ``episode_score`` of the verdicts whose criterion has that axis.

    A verdict's axis is looked up by ``criterion_id`` in ``rubric``; verdicts whose id is not
    in the rubric are ignored, and criteria whose axis is None are left out. An axis present in
    the rubric but with no scored positive points maps to None. Keys (axis names) are sorted.
    """
    axis_of: dict[str, str] = {}
    axes: set[str] = set()
    for c in rubric:
        if c.axis is None:
            continue
        axis_of[c.id] = str(c.axis)
        axes.add(str(c.axis))
    by_axis: dict[str, list[Verdict]] = {a: [] for a in axes}
    for verdict in verdicts:
        axis = axis_of.get(verdict.criterion_id)
        if axis is not None:
            by_axis[axis].append(verdict)
    return {a: episode_score(by_axis[a]) for a in sorted(axes)}


def clip01(x: float) -> float:
    """``x`` clipped to the interval [0, 1]."""
    return min(1.0, max(0.0, x))


def _check_bootstrap_args(n_boot: int, level: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile of non-empty sorted values by linear interpolation between order
    statistics (numpy's default "linear" rule, Hyndman-Fan type 7): position h = (m - 1) * q."""
    m = len(sorted_values)
    h = (m - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, m - 1)
    a, b = sorted_values[lo], sorted_values[hi]
    # Clamped so that float rounding never leaves the bracketing pair.
    return min(max(a + (h - lo) * (b - a), a), b)


def _bootstrap(
    values: list[float], seed: int, n_boot: int, level: float
) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high): the mean of ``values`` and its percentile-bootstrap interval.

    Each of ``n_boot`` resamples draws len(values) values with replacement
    (``random.Random(seed).choices``) and takes their mean (``math.fsum`` / n); the bounds are
    the (1 - level) / 2 and 1 - (1 - level) / 2 quantiles (see ``_quantile``) of the resample
    means. Empty -> all None; one value -> low == high == mean.
    """
    n = len(values)
    if n == 0:
        return None, None, None
    mean = math.fsum(values) / n
    if n == 1:
        return mean, mean, mean
    rng = random.Random(seed)
    means = sorted(math.fsum(rng.choices(values, k=n)) / n for _ in range(n_boot))
    alpha = (1.0 - level) / 2.0
    return mean, _quantile(means, alpha), _quantile(means, 1.0 - alpha)


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


@dataclass(frozen=True)
class Estimate:
    """A mean of scores clipped to [0, 1] with its bootstrap confidence interval."""

    n: int  # number of non-None values used
    mean: float | None  # mean of the values clipped to [0, 1]
    low: float | None  # bootstrap percentile CI bounds
    high: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        """{"n", "mean", "low", "high"} with the floats rounded to 4 decimal places."""
        return {
            "n": self.n,
            "mean": _rounded(self.mean),
            "low": _rounded(self.low),
            "high": _rounded(self.high),
        }


def aggregate(
    scores: Iterable[float | None],
    *,
    seed: int = 0,
    n_boot: int = 2000,
    level: float = 0.95,
) -> Estimate:
    """Mean of the scores clipped to [0, 1], with a percentile-bootstrap CI of that mean.

    None values are left out; each remaining value is clipped to [0, 1]. The CI comes from
    ``n_boot`` resamples with replacement drawn with ``random.Random(seed)``; its bounds are
    the (1 - level) / 2 and 1 - (1 - level) / 2 quantiles of the resample means, by linear
    interpolation between order statistics (numpy's default rule). n == 0 ->
    Estimate(0, None, None, None); n == 1 -> low == high == mean. The same seed gives an
    identical result. ValueError unless n_boot >= 1 and 0 < level < 1.
    """
    _check_bootstrap_args(n_boot, level)
    values = [clip01(s) for s in scores if s is not None]
    mean, low, high = _bootstrap(values, seed, n_boot, level)
    return Estimate(len(values), mean, low, high)


def group_aggregate(
    items: Iterable[tuple[K, float | None]],
    *,
    seed: int = 0,
    n_boot: int = 2000,
    level: float = 0.95,
) -> dict[K, Estimate]:
    """``aggregate()`` of the scores of each key, keys in order of ``str(key)``.

    Every group is bootstrapped with the same ``seed``; a key whose scores are all None maps
    to Estimate(0, None, None, None).
    """
    _check_bootstrap_args(n_boot, level)
    groups: dict[K, list[float | None]] = {}
    for key, score in items:
        groups.setdefault(key, []).append(score)
    return {
        key: aggregate(groups[key], seed=seed, n_boot=n_boot, level=level)
        for key in sorted(groups, key=str)
    }


def episode_passed(
    score: float | None, critical_pass: bool | None, *, threshold: float = 0.5
) -> bool | None:
    """Whether an episode passes: score >= threshold and critical_pass is not False.

    None when the score is None (an unknown critical_pass does not fail the episode).
    """
    if score is None:
        return None
    return score >= threshold and critical_pass is not False


def pass_hat_k(trials: Mapping[K, Sequence[bool | None]], k: int) -> float | None:
    """pass^k as in tau-bench: the chance that k trials of a task, drawn without replacement
    from its n trials, all pass, averaged over tasks.

    For each task (key) None trials are dropped; a task with n >= k trials of which c passed
    contributes C(c, k) / C(n, k) (``math.comb``); tasks with fewer than k trials are left
    out. The mean over the remaining tasks, or None if there are none. k = 1 gives the mean
    per-task pass rate. ValueError unless k >= 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    per_task: list[float] = []
    for outcomes in trials.values():
        known = [t for t in outcomes if t is not None]
        n = len(known)
        if n < k:
            continue
        c = sum(1 for t in known if t)
        per_task.append(math.comb(c, k) / math.comb(n, k))
    if not per_task:
        return None
    return math.fsum(per_task) / len(per_task)


@dataclass(frozen=True)
class Paired:
    """Paired difference of two models' scores (clipped to [0, 1]) on the same episodes."""

    n: int  # keys where both sides have a score
    mean_diff: float | None  # mean of clip01(a) - clip01(b)
    low: float | None  # bootstrap percentile CI bounds
    high: float | None
    only_a: int  # keys scored in a but missing/None in b
    only_b: int  # keys scored in b but missing/None in a

    def to_dict(self) -> dict[str, float | int | None]:
        """{"n", "mean_diff", "low", "high", "only_a", "only_b"}, floats rounded to 4 places."""
        return {
            "n": self.n,
            "mean_diff": _rounded(self.mean_diff),
            "low": _rounded(self.low),
            "high": _rounded(self.high),
            "only_a": self.only_a,
            "only_b": self.only_b,
        }


def paired_difference(
    a: Mapping[K, float | None],
    b: Mapping[K, float | None],
    *,
    seed: int = 0,
    n_boot: int = 2000,
    level: float = 0.95,
) -> Paired:
    """Paired comparison of two models on the same episodes (keys).

    For every key scored (not None) in both, the difference clip01(a[key]) - clip01(b[key]);
    mean_diff is their mean and [low, high] its percentile-bootstrap CI over keys, drawn with
    ``random.Random(seed)`` and the same quantile rule as ``aggregate``. only_a / only_b count
    keys scored on one side but missing or None on the other. n == 0 -> mean and bounds None;
    n == 1 -> low == high == mean_diff. ValueError unless n_boot >= 1 and 0 < level < 1.
    """
    _check_bootstrap_args(n_boot, level)
    scored_a = {key: s for key, s in a.items() if s is not None}
    scored_b = {key: s for key, s in b.items() if s is not None}
    shared = [key for key in scored_a if key in scored_b]
    diffs = [clip01(scored_a[key]) - clip01(scored_b[key]) for key in shared]
    mean, low, high = _bootstrap(diffs, seed, n_boot, level)
    return Paired(
        n=len(diffs),
        mean_diff=mean,
        low=low,
        high=high,
        only_a=sum(1 for key in scored_a if key not in scored_b),
        only_b=sum(1 for key in scored_b if key not in scored_a),
    )
