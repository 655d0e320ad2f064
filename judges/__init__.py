"""Judges: rubric grading and the scoring maths."""

from judges._rubric import GraderReply, RubricJudge
from judges._scoring import critical_pass, episode_score, unscored_count

__all__ = ["GraderReply", "RubricJudge", "critical_pass", "episode_score", "unscored_count"]
