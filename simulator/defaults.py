"""Every default of clinsim, in one table, with no imports: the commands (whose ``--help``
must stay fast), the TUI, the batch runner and the tests read these names; a default is never
written as a literal anywhere else. ``simulator.config`` resolves flags over a config file over
these."""

from __future__ import annotations

from typing import Any, Literal

# Every front end (the commands, the TUI, the batch runner, the tests) reads these names; a
# default is never written as a literal anywhere else.
DEFAULT_SPEC = "local:smollm2"  # the embedded model: no network, no key
DEFAULT_SCENARIO = "triage-indigestion-chest-pain"  # the demo's, and 'clinsim run' without one
DEFAULT_PERSONA = "calm-adult"
DEFAULT_SEED = 0
DEFAULT_MIN_TURNS = 1
DEFAULT_ERROR_BUDGET = 3  # failed turns an episode absorbs before it ends as error_budget
MIN_TIMEOUT_S = 1.0  # the shortest --timeout / timeout_s: shorter would end before any turn
MAX_PLANNED_EPISODES = 100_000  # one run's plan: far above a benchmark, far below memory's end
DEFAULT_JUDGE_MODE: Literal["per-criterion", "batched"] = "per-criterion"
ROLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "clinician": {"spec": DEFAULT_SPEC, "temperature": 0.7, "max_tokens": 320},
    "patient": {"spec": DEFAULT_SPEC, "temperature": 0.7, "max_tokens": 160},
    "judge": {"spec": DEFAULT_SPEC, "temperature": 0.0, "max_tokens": 256},
}
