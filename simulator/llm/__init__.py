"""Model backends behind one async protocol; retries and structured output in one place each."""

from simulator.llm._base import (
    INFRASTRUCTURE,
    BackendConfigError,
    BackendError,
    ChatBackend,
    Completion,
    JsonSchema,
    LoopLimit,
    Message,
    is_infrastructure,
)
from simulator.llm._retry import NO_RETRY, RetryPolicy, with_retries
from simulator.llm._spec import SPEC_HELP, ModelConfig, calls_limit, check_spec, make_backend
from simulator.llm._structured import (
    StructuredResult,
    complete_structured,
    parse_json_reply,
    schema_of,
)

__all__ = [
    "INFRASTRUCTURE",
    "NO_RETRY",
    "SPEC_HELP",
    "BackendConfigError",
    "BackendError",
    "ChatBackend",
    "Completion",
    "JsonSchema",
    "LoopLimit",
    "Message",
    "ModelConfig",
    "RetryPolicy",
    "StructuredResult",
    "calls_limit",
    "check_spec",
    "complete_structured",
    "is_infrastructure",
    "make_backend",
    "parse_json_reply",
    "schema_of",
    "with_retries",
]
