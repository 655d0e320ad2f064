"""The models of one episode, built from the specs the set-up or fork dialog gives: each
role's config (``model_config``), and the roles themselves (``build_roles``: the one
``simulator.session.Roles`` that ``clinsim run`` and ``clinsim batch`` use too); and
``save_result``, which writes a finished episode like ``clinsim run`` does."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from simulator.config import episode_path, role_config, write_private
from simulator.judging import Judge
from simulator.llm import BackendError, ChatBackend, ModelConfig, RetryPolicy
from simulator.schemas import EpisodeResult
from simulator.session import Roles
from tui.services import Services

__all__ = ["Roles", "SetupError", "build_roles", "model_config", "save_result"]


class SetupError(Exception):
    """A spec or library entry the episode cannot start with; one line."""


def model_config(role: str, spec: str) -> ModelConfig:
    try:
        return role_config(role, None, {"spec": spec})
    except (BackendError, ValidationError) as e:
        msg = str(e)
        if isinstance(e, ValidationError):
            msg = e.errors()[0]["msg"].removeprefix("Value error, ")
        raise SetupError(f"{role}: {msg}") from None


def build_roles(services: Services, clinician: str, patient: str, judge: str) -> Roles:
    """The roles of one episode (``simulator.session.Roles``) from the specs the set-up or
    fork dialog gives; bad input is a ``SetupError`` naming the role."""
    cfgs = [model_config("clinician", clinician), model_config("patient", patient)]
    judges: list[ModelConfig] = []
    if judge:
        if judge == "human":
            raise SetupError("judge: a person reviews verdicts in a run's review screen instead")
        if services.make_judge is None:
            raise SetupError("judge: no judge available here; leave the judge empty")
        judges = [model_config("judge", judge)]

    def make_backend(cfg: ModelConfig, calls: int | None = None) -> ChatBackend:
        return services.make_backend(cfg)

    def make_judge(
        cfgs: list[ModelConfig],
        *,
        seed: int,
        retry: RetryPolicy | None = None,
        calls: int | None = None,
    ) -> tuple[Judge, list[ChatBackend]]:
        assert services.make_judge is not None
        try:
            return services.make_judge(cfgs[0], services.judge_mode, seed)
        except (BackendError, ValueError) as e:
            raise SetupError(f"judge: {e}") from None

    try:
        return Roles.build(
            cfgs[:1], cfgs[1], judges, make_backend=make_backend, make_judge=make_judge
        )
    except BackendError as e:
        raise SetupError(str(e)) from None


def save_result(services: Services, result: EpisodeResult) -> Path:
    """Write the result like ``clinsim run`` does (0600), so nothing watched is lost."""
    t = result.transcript
    path = episode_path(t.scenario_id, t.episode_id, services.episodes_dir)
    write_private(path, result.model_dump_json(indent=2))
    return path
