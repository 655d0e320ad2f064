"""The hidden facts of a case, ticked off as the patient discloses them."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import Static

from scenarios import Scenario


class FactsPanel(Static):
    """Each fact with a box that is ticked once disclosed; red flags are marked '!'."""

    def __init__(self, scenario: Scenario, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.scenario = scenario
        self.disclosed: list[str] = []
        self.refresh_facts()

    def disclose(self, fact_ids: Iterable[str]) -> None:
        new = [f for f in fact_ids if f not in self.disclosed]
        if new:
            self.disclosed += new
            self.refresh_facts()

    def refresh_facts(self) -> None:
        facts = self.scenario.case.facts
        text = Text()
        text.append(f"Hidden facts {len(self.disclosed)}/{len(facts)}\n", style="bold")
        for fact in facts:
            done = fact.id in self.disclosed
            text.append("[x] " if done else "[ ] ", style="green" if done else "dim")
            text.append("! " if fact.red_flag else "", style="bold red")
            text.append(fact.text + "\n", style="" if done else "dim")
        self.update(text)
