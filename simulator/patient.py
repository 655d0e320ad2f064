"""The simulated patient: its system prompt, its view of the conversation, what it disclosed."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

from personas import Persona, render_style
from scenarios import Fact, Scenario
from simulator._prompts import language_name, render
from simulator.llm import Message
from simulator.schemas import Turn

END_MARKER = "[END]"
_CJK = re.compile(r"[\u3400-\u9fff]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def describe_demographics(scenario: Scenario) -> str:
    d = scenario.case.demographics
    parts = [f"{d.age} years old" if d.age is not None else None, d.sex, d.details]
    return ", ".join(p for p in parts if p) or "an adult"


def patient_system_prompt(scenario: Scenario, persona: Persona) -> str:
    """The patient agent's instructions, rendered from the persona and the scenario."""
    facts = scenario.case.facts
    return render(
        "patient_system.md.j2",
        scenario=scenario,
        persona=persona,
        relation=persona.caregiver_relation or "",
        demographics=describe_demographics(scenario),
        facts_volunteer=[f for f in facts if f.volunteer],
        facts_asked=[f for f in facts if not f.volunteer],
        style=render_style(persona, scenario.language),
        language_name=language_name(scenario.language),
        end_marker=END_MARKER,
    )


def clinician_system_prompt(scenario: Scenario) -> str:
    """The deployment system prompt plus the one protocol line on how to end."""
    return render(
        "clinician_protocol.md.j2", system_prompt=scenario.system_prompt, end_marker=END_MARKER
    )


def conversation_for(role: str, system: str, turns: Sequence[Turn]) -> list[Message]:
    """Messages as ``role`` sees them: its own turns are 'assistant', the other's 'user'."""
    messages: list[Message] = [{"role": "system", "content": system}]
    for t in turns:
        messages.append({"role": "assistant" if t.role == role else "user", "content": t.content})
    if role == "patient" and turns and turns[0].role == "patient":
        # Chat templates expect a user turn first; the patient opened, so show that as context.
        messages.insert(1, {"role": "user", "content": "(The assistant is waiting for you.)"})
    return messages


def strip_end_marker(text: str) -> tuple[str, bool]:
    """Remove the end marker wherever it appears (substring match, any case)."""
    found = END_MARKER.lower() in text.lower()
    if found:
        text = re.sub(re.escape(END_MARKER), "", text, flags=re.IGNORECASE).strip()
    return text, found


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
