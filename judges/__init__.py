"""Judges: rubric grading, ensembles, the scoring maths and calibration against human labels."""

from judges._agreement import Agreement, agreement
from judges._calibration import CalibrationReport, calibrate
from judges._ensemble import EnsembleJudge, combine, vote_agreement
from judges._labels import (
    HumanLabel,
    LabelSet,
    labels_from_records,
    labels_from_reviews,
    load_labels,
)
from judges._rubric import JUDGE_MODES, GraderReply, JudgeMode, RubricJudge
from simulator.scoring import (
    Estimate,
    Paired,
    aggregate,
    axis_scores,
    clip01,
    critical_pass,
    episode_passed,
    episode_score,
    group_aggregate,
    paired_difference,
    pass_hat_k,
    unscored_count,
)

__all__ = [
    "JUDGE_MODES",
    "Agreement",
    "CalibrationReport",
    "EnsembleJudge",
    "Estimate",
    "GraderReply",
    "HumanLabel",
    "JudgeMode",
    "LabelSet",
    "Paired",
    "RubricJudge",
    "aggregate",
    "agreement",
    "axis_scores",
    "calibrate",
    "clip01",
    "combine",
    "critical_pass",
    "episode_passed",
    "episode_score",
    "group_aggregate",
    "labels_from_records",
    "labels_from_reviews",
    "load_labels",
    "paired_difference",
    "pass_hat_k",
    "unscored_count",
    "vote_agreement",
]
