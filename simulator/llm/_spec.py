"""Model specs (``local:smollm2``, ``hf:PATH``, ``openai:MODEL``, ``scripted:FILE``, ``human``)
and the per-role model settings that a run config or the command line gives."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from simulator.llm._base import BackendConfigError, ChatBackend

SPEC_PREFIXES = ("local:", "hf:", "openai:", "scripted:")
SPEC_HELP = "local:smollm2, hf:PATH_OR_ID, openai:MODEL, scripted:FILE or human"


class ModelConfig(BaseModel):
    """One role's model and sampling settings. The API key is never serialized."""

    model_config = ConfigDict(extra="forbid")

    spec: str = Field(description=f"Which model: {SPEC_HELP}.")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=256, ge=1, le=32768)
    base_url: str | None = Field(default=None, description="openai: server URL.")
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    timeout: float = Field(default=60.0, gt=0, description="Seconds per call.")
    concurrency: int | None = Field(
        default=None,
        ge=1,
        description="Calls in flight to this role's server; default: one per episode in flight "
        "(a batch's --concurrency), 16 for a single episode. Set it for a rate-limited API.",
    )

    # Validators raise ValueError, so that pydantic reports the field (and a config file's
    # loader its line) like any other bad value.
    @field_validator("spec")
    @classmethod
    def _known_prefix(cls, v: str) -> str:
        try:
            check_spec(v)
        except BackendConfigError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v:
            from simulator.llm._openai import validate_base_url

            try:
                validate_base_url(v)
            except BackendConfigError as e:
                raise ValueError(str(e)) from None
        return v

    def public(self) -> dict[str, object]:
        """What is saved with results: everything but secrets."""
        return self.model_dump(mode="json", exclude={"api_key", "concurrency"})


def check_spec(spec: str) -> None:
    if spec == "human" or any(spec.startswith(p) for p in SPEC_PREFIXES):
        return
    raise BackendConfigError(f"unknown model spec {spec!r}; use {SPEC_HELP}")


DEFAULT_CALLS = 16


def calls_limit(cfg: ModelConfig, calls: int | None = None) -> int:
    """Calls in flight to one role's server: the config's ``concurrency`` if set, else
    ``calls`` (a batch passes its episodes in flight: each has at most one call of a role
    waiting, so a lower limit would leave episodes idle), else 16."""
    return cfg.concurrency or calls or DEFAULT_CALLS


def make_backend(cfg: ModelConfig, *, calls: int | None = None) -> ChatBackend:
    """Build the backend for a spec. Cheap: models load on first use or on ``check()``.
    ``calls``: the default limit on calls in flight (see ``calls_limit``)."""
    spec = cfg.spec
    check_spec(spec)
    kind, _, rest = spec.partition(":")
    if spec == "human":  # simulator.session seats a person; no backend plays one
        raise BackendConfigError("the 'human' role is played by a person, not by a model backend")
    if kind == "local":
        from simulator.llm._local import LocalLlamaBackend

        return LocalLlamaBackend(rest, calls=calls)
    if kind == "hf":
        from simulator.llm._hf import HFBackend

        return HFBackend(rest)
    if kind == "openai":
        from simulator.llm._openai import OpenAIBackend

        return OpenAIBackend(
            rest,
            base_url=cfg.base_url,
            api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
            timeout=cfg.timeout,
            concurrency=calls_limit(cfg, calls),
        )
    from simulator.llm._scripted import ScriptedBackend

    return ScriptedBackend(rest)
