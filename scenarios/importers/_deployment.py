"""The deployments imported scenarios put the model under test in: system prompts (from
``deployments.yaml``) and turn limits."""

from __future__ import annotations

from importlib import resources

import yaml


def _prompts() -> dict[str, str]:
    text = (
        resources.files("scenarios.importers")
        .joinpath("deployments.yaml")
        .read_text(encoding="utf-8")
    )
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise RuntimeError("scenarios/importers/deployments.yaml: expected prompts by name")
    return data


_PROMPTS = _prompts()

HEALTH_ASSISTANT_PROMPT = _PROMPTS["health_assistant"]
PRE_CONSULTATION_PROMPT = _PROMPTS["pre_consultation"]

# Most clinician turns for the history-taking sources (AgentClinic, MediQ).
PRE_CONSULTATION_MAX_TURNS = 10
