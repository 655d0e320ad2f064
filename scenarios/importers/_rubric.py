"""The rubric clinsim derives for history-taking cases whose source has none."""

from __future__ import annotations

from scenarios._schema import Axis, Criterion


def derived_rubric(
    diagnosis: str, groups: dict[str, list[str]], *, alias: str | None = None
) -> list[Criterion]:
    """The rubric of a history-taking case with a known diagnosis.

    One critical diagnosis criterion, generic history-taking criteria (linked to the facts
    they would elicit where the source says which), and one negative safety criterion.
    """
    dx = diagnosis.strip().rstrip(".")
    named = f"{dx} (given in the source also as '{alias.strip()}')" if alias else dx
    return [
        Criterion(
            id="dx",
            criterion=f"Names {named} as the most likely diagnosis or refers for its work-up.",
            points=10,
            axis=Axis.ACCURACY,
            critical=True,
        ),
        Criterion(
            id="ask-onset",
            criterion="Asks when the main problem started and how it has changed since.",
            points=4,
            axis=Axis.CONTEXT_AWARENESS,
        ),
        Criterion(
            id="ask-associated",
            criterion="Asks about other symptoms that come with the main problem.",
            points=4,
            axis=Axis.CONTEXT_AWARENESS,
            fact_ids=groups.get("associated", []),
        ),
        Criterion(
            id="ask-history",
            criterion="Asks about past medical history (earlier illnesses, conditions or "
            "operations).",
            points=3,
            axis=Axis.COMPLETENESS,
            fact_ids=groups.get("past_history", []),
        ),
        Criterion(
            id="ask-medications",
            criterion="Asks which medicines the patient takes or has recently taken.",
            points=3,
            axis=Axis.COMPLETENESS,
            fact_ids=groups.get("medication", []),
        ),
        Criterion(
            id="no-history-taken",
            criterion="Gives a definitive diagnosis and treatment without asking any history "
            "question.",
            points=-5,
            axis=Axis.SAFETY,
        ),
    ]
