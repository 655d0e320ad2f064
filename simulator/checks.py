"""The checks run on every turn, in one place: the end marker and the minimum number of
clinician turns (early end), a reply cut off by the token limit (truncation), the case facts a
patient turn discloses, numbers a patient states that the case does not hold (possible invented
facts), and clinician text addressed to the grader. Each check gives flags on the turn; none
changes what was said beyond removing the end marker."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from scenarios import Fact, Scenario
from simulator.grader_address import FLAG as GRADER_FLAG
from simulator.grader_address import addresses_grader
from simulator.patient import describe_demographics, strip_end_marker
from simulator.schemas import CallRecord, Role, Turn

_CJK = re.compile(r"[\u3400-\u9fff]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


@dataclass
class Checked:
    """One turn after the checks: its content (end marker removed), whether it ends the
    conversation, its flags, the facts it newly disclosed, and the clinician's turn count
    with it."""

    content: str
    ended: bool
    clinician_turns: int
    flags: list[str] = field(default_factory=list)
    disclosed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing said and no end: the speaker failed to take the turn."""
        return not self.content and not self.ended


class TurnChecks:
    """The per-turn checks of one episode (its case facts, the numbers the case holds, its
    minimum clinician turns), built once per episode."""

    def __init__(self, scenario: Scenario, min_turns: int) -> None:
        self.facts = scenario.case.facts
        self.grounded = case_numbers(scenario)
        self.min_turns = max(1, min_turns)

    def check(
        self,
        role: Role,
        said: str,
        call: CallRecord | None,
        turns: Sequence[Turn],
        disclosed: Sequence[str],
    ) -> Checked:
        """Check what ``role`` said after ``turns``, given the facts ``disclosed`` so far."""
        content, ended = strip_end_marker(said)
        flags: list[str] = []
        if call is not None and call.finish_reason == "length":
            flags.append("truncated")
        clinician_turns = sum(1 for t in turns if t.role == "clinician" and t.source != "opening")
        if role == "clinician":
            clinician_turns += 1
        if ended and clinician_turns < self.min_turns:
            # Neither side may end before the clinician has had min_turns real turns.
            ended = False
            flags.append("early_end_ignored")
        out = Checked(content, ended, clinician_turns, flags)
        if not content:
            return out
        if role == "patient":
            out.disclosed = [f for f in disclosed_facts(content, self.facts) if f not in disclosed]
            grounded = self.grounded.union(
                *(numbers_in(t.content) for t in turns if t.role == "clinician")
            )
            if ungrounded_numbers(content, grounded):
                flags.append("ungrounded_numbers")
        elif addresses_grader(content):
            flags.append(GRADER_FLAG)
        return out


@functools.lru_cache(maxsize=4096)
def _keywords_matcher(keywords: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether any of a fact's keywords is in lower-case text: one regex for all its words
    (word match), substring tests for Chinese ones; compiled once per fact."""
    words = [k.lower().strip() for k in keywords if k.strip()]
    cjk = [k for k in words if _CJK.search(k)]
    latin = [re.escape(k) for k in words if not _CJK.search(k)]
    pattern = (
        re.compile(r"(?<![a-z0-9])(?:" + "|".join(latin) + r")(?![a-z0-9])") if latin else None
    )

    def match(text: str) -> bool:
        return any(k in text for k in cjk) or (pattern is not None and bool(pattern.search(text)))

    return match


def disclosed_facts(text: str, facts: Sequence[Fact]) -> list[str]:
    """Fact ids whose keywords occur in a patient turn (word match; substring for Chinese).

    A keyword heuristic, deliberately simple and deterministic: it can count a negated mention
    ("no chest pain") as a disclosure, and misses paraphrases the scenario's keywords lack.
    """
    lower = text.lower()
    return [f.id for f in facts if _keywords_matcher(tuple(f.keywords))(lower)]


def numbers_in(text: str) -> set[str]:
    return set(_NUMBER.findall(text))


def case_numbers(scenario: Scenario) -> set[str]:
    texts = [f.text for f in scenario.case.facts] + [
        scenario.case.history,
        describe_demographics(scenario),
        *(t.content for t in scenario.opening),
    ]
    return {n for t in texts for n in numbers_in(t)}


def ungrounded_numbers(text: str, grounded: set[str]) -> list[str]:
    """Numbers a patient turn states that appear nowhere in the case: possible invented facts."""
    return sorted(numbers_in(text) - grounded)
