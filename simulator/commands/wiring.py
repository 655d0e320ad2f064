"""Model configs into backends and judges: the judge role's settings, a rubric judge or an
ensemble over backends, and checking backends before a command uses them. The TUI's services
and the tests build their judges with ``judge_from_configs`` too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from simulator.commands.common import fail, fail_validation

if TYPE_CHECKING:
    from judges import EnsembleJudge, JudgeMode, RubricJudge
    from simulator.llm import ChatBackend, ModelConfig, RetryPolicy
    from simulator.session import JudgeFactory


def judge_configs(
    specs: list[str] | None,
    *,
    base_url: str | None,
    temperature: float | None,
    max_tokens: int | None,
    from_file: ModelConfig | None = None,
) -> list[ModelConfig]:
    """The judge role's settings, once per spec given (the config file's or default if none)."""
    from pydantic import ValidationError

    from simulator.config import role_config

    overrides: dict[str, Any] = {
        "base_url": base_url,
        "temperature": temperature,
        "max_tokens": max_tokens,
    }
    try:
        return [
            role_config("judge", from_file, {**overrides, "spec": spec})
            for spec in (specs or [None])  # type: ignore[list-item]
        ]
    except ValidationError as e:
        fail_validation(e)


def check_mode(mode: str) -> None:
    """Bad --mode / --judge-mode: one line, exit 2."""
    from judges import JUDGE_MODES

    if mode not in JUDGE_MODES:
        fail(f"unknown judge mode {mode!r}; use {' or '.join(JUDGE_MODES)}")


def judge_from_configs(
    cfgs: list[ModelConfig],
    *,
    mode: str,
    seed: int,
    retry: RetryPolicy | None = None,
    calls: int | None = None,
) -> tuple[RubricJudge | EnsembleJudge, list[ChatBackend]]:
    """One rubric judge, or an ensemble of several; with the backends to close afterwards.
    ``calls``: grader calls in flight per judge model unless its config sets ``concurrency``
    (a batch passes its episodes in flight). Bad input raises (BackendConfigError for a spec,
    ValueError for a mode); the TUI shows it."""
    from judges import EnsembleJudge, RubricJudge
    from simulator.llm import calls_limit, make_backend

    if any(c.spec == "human" for c in cfgs):
        raise ValueError("the judge cannot be 'human' here; review verdicts in the TUI instead")
    backends = [make_backend(c, calls=calls) for c in cfgs]
    members = [
        # members of an ensemble get distinct seeds, so one spec repeated at temperature > 0
        # samples independent votes
        RubricJudge(
            b,
            c,
            mode=cast("JudgeMode", mode),
            seed=seed + 7919 * n,
            concurrency=calls_limit(c, calls),
            retry=retry,
        )
        for n, (b, c) in enumerate(zip(backends, cfgs, strict=True))
    ]
    judge: RubricJudge | EnsembleJudge = members[0] if len(members) == 1 else EnsembleJudge(members)
    return judge, backends


def build_judge(
    cfgs: list[ModelConfig],
    *,
    mode: str,
    seed: int,
    retry: RetryPolicy | None = None,
    calls: int | None = None,
) -> tuple[RubricJudge | EnsembleJudge, list[ChatBackend]]:
    """``judge_from_configs`` for a command: bad input is one line and exit code 2."""
    from simulator.llm import BackendConfigError

    check_mode(mode)
    try:
        return judge_from_configs(cfgs, mode=mode, seed=seed, retry=retry, calls=calls)
    except (BackendConfigError, ValueError) as e:
        fail(str(e))


def judge_factory(mode: str) -> JudgeFactory:
    """``build_judge`` in ``mode``, as the judge factory ``Roles.build`` takes."""

    def make(
        cfgs: list[ModelConfig],
        *,
        seed: int,
        retry: RetryPolicy | None = None,
        calls: int | None = None,
    ) -> tuple[RubricJudge | EnsembleJudge, list[ChatBackend]]:
        return build_judge(cfgs, mode=mode, seed=seed, retry=retry, calls=calls)

    return make


async def checked(backends: list[ChatBackend]) -> None:
    """Check every backend; one that fails ends the command with one line, exit code 2."""
    from simulator.llm import BackendConfigError, BackendError

    for b in backends:
        try:
            await b.check()
        except (BackendConfigError, BackendError) as e:
            fail(str(e))
