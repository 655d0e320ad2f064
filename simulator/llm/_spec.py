"""Model specs (``local:smollm2``, ``hf:PATH``, ``openai:MODEL``, ``scripted:FILE``, ``human``)
and the per-role model settings that a run config or the command line gives."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from simulator.llm._base import BackendConfigError, ChatBackend, HumanBackend

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
    concurrency: int = Field(default=16, ge=1, description="Calls in flight per endpoint.")

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


def make_backend(cfg: ModelConfig) -> ChatBackend:
    """Build the backend for a spec. Cheap: models load on first use or on ``check()``."""
    spec = cfg.spec
    check_spec(spec)
    kind, _, rest = spec.partition(":")
    if spec == "human":
        return HumanBackend()
    if kind == "local":
        from simulator.llm._local import LocalLlamaBackend

        return LocalLlamaBackend(rest)
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
            concurrency=cfg.concurrency,
        )
    from simulator.llm._scripted import ScriptedBackend

    return ScriptedBackend(rest)
