"""How results and verdicts read on screen: the outcome under a finished episode, a stored
episode's score, one verdict in detail, and a reviewer's label for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text

from simulator.schemas import EpisodeResult, Verdict
from simulator.store import EpisodeRow

STATUS_STYLE = {"met": "green", "not_met": "yellow", "unscored": "red"}
HUMAN_LABEL = {"met": "met", "not_met": "not met"}


def verdict_lines(result: EpisodeResult, criteria: Mapping[str, str]) -> Text:
    """The outcome under a finished transcript: termination, score and each verdict."""
    t = result.transcript
    text = Text()
    text.append(f"Ended: {t.termination.value}", style="bold")
    text.append(f" · {len(t.turns)} turns · {len(t.disclosed)} facts disclosed\n")
    for e in t.errors:
        text.append(f"error ({e.role}, {e.kind}): {e.message}\n", style="red")
    if not result.verdicts:
        text.append("not judged\n", style="dim")
        return text
    score = "n/a" if result.score is None else f"{result.score:.2f}"
    crit = {True: "pass", False: "FAIL", None: "n/a"}[result.critical_pass]
    text.append(f"score {score} · critical {crit} · unscored {result.unscored}\n", style="bold")
    for v in result.verdicts:
        text.append(f"{v.status:<9}", style=STATUS_STYLE[v.status])
        cites = ",".join(map(str, v.evidence_turns))
        text.append(f" {v.criterion_id} {criteria.get(v.criterion_id, '')[:60]}")
        text.append(f" (turns {cites})\n" if cites else "\n", style="dim")
    return text


def score_text(row: EpisodeRow) -> str:
    """A stored episode's score, or the role that made it fail."""
    if row.status == "failed":
        return f"failed ({row.failure_role})"
    return "n/a" if row.score is None else f"{row.score:.2f}"


def review_label(review: Mapping[str, Any] | None) -> Text:
    """A reviewer's label for a verdict: green where it agrees with the judge, '*' with a
    note, a dash while not reviewed."""
    if review is None:
        return Text("—", style="dim")
    agree = review["human_status"] == review["judge_status"]
    label = HUMAN_LABEL[review["human_status"]] + ("*" if review["note"] else "")
    return Text(label, style="green" if agree else "bold magenta")


def verdict_detail(
    v: Verdict, criteria: Mapping[str, str], review: Mapping[str, Any] | None
) -> Text:
    """One verdict in full: the criterion, the judge's status, cited turns, explanation and
    votes, and the reviewer's label and note."""
    text = Text()
    text.append(f"{v.criterion_id} ({v.points:+d})\n", style="bold")
    text.append(criteria.get(v.criterion_id, "(criterion text not in the library)"))
    text.append("\njudge: ")
    text.append(v.status, style=STATUS_STYLE[v.status])
    text.append(f" · turns {','.join(map(str, v.evidence_turns)) or 'none cited'}\n")
    if v.explanation:
        text.append(v.explanation + "\n", style="italic")
    if v.votes:
        text.append("votes: " + ", ".join(f"{k} {s}" for k, s in v.votes.items()) + "\n")
    if review is not None:
        text.append(f"you: {HUMAN_LABEL[review['human_status']]}", style="bold")
        text.append(f" · {review['note']}\n" if review["note"] else "\n")
    return text
