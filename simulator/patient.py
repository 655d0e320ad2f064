"""The prompts each side talks under and its view of the conversation; the end marker."""

from __future__ import annotations

import re
from collections.abc import Sequence

from personas import Persona, render_style
from scenarios import Scenario
from simulator._prompts import language_name, render
from simulator.llm import Message
from simulator.schemas import Turn

END_MARKER = "[END]"


def describe_demographics(scenario: Scenario) -> str:
    d = scenario.case.demographics
    parts = [f"{d.age} years old" if d.age is not None else None, d.sex, d.details]
    return ", ".join(p for p in parts if p) or "an adult"


def patient_system_prompt(scenario: Scenario, persona: Persona) -> str:
    """The patient agent's instructions, rendered from the persona and the scenario."""
    facts = scenario.case.facts
    return render(
        "simulator",
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
        "simulator",
        "clinician_protocol.md.j2",
        system_prompt=scenario.system_prompt,
        end_marker=END_MARKER,
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
