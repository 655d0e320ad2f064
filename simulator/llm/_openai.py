"""``openai:MODEL`` — any OpenAI-compatible Chat Completions server.

The SDK's own retries are off (``max_retries=0``): ``simulator.llm.call`` retries in one place.
Structured output degrades from ``json_schema`` to ``json_object`` with a schema (llama.cpp's
server) to a plain request (prompt plus tolerant parsing), and what a server accepts is
remembered per base URL for the life of the process.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any
from urllib.parse import urlsplit

from simulator.llm._base import (
    BackendConfigError,
    BackendError,
    Completion,
    FaultKind,
    JsonSchema,
    Message,
    StructuredMode,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_MODES: tuple[StructuredMode, ...] = ("json_schema", "json_object", "prompt")
# base_url -> the structured-output mode that server accepted
_server_modes: dict[str, StructuredMode] = {}


def validate_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BackendConfigError(
            f"base_url {url!r} is not an http(s) URL; use e.g. http://127.0.0.1:8000/v1"
        )
    return url.rstrip("/")


def _response_format(mode: StructuredMode, fmt: JsonSchema) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": fmt.name, "schema": fmt.schema, "strict": False},
        }
    if mode == "json_object":
        return {"type": "json_object", "schema": fmt.schema}
    return None


def _transport() -> dict[str, Any]:
    """The SDK's aiohttp transport (``openai[aiohttp]``, a dependency of clinsim): well under
    half the CPU per call of its default httpx transport, whose pool also scans every
    connection on each request (bench/RESULTS.md). Without it, or with
    ``CLINSIM_HTTP=httpx``, the SDK's default."""
    if os.environ.get("CLINSIM_HTTP") == "httpx":
        return {}
    try:
        from openai import DefaultAioHttpClient

        return {"http_client": DefaultAioHttpClient()}
    except (ImportError, RuntimeError):  # an SDK without it, or aiohttp missing
        return {}


def _classify(e: Exception, where: str) -> BackendError:
    import openai

    if isinstance(e, openai.APITimeoutError):
        return BackendError("timeout", f"{where}: request timed out")
    if isinstance(e, openai.APIConnectionError):
        cause = e.__cause__ or e
        why = str(cause) or type(cause).__name__
        return BackendError("connection", f"{where}: connection failed ({why})")
    if isinstance(e, openai.APIStatusError):
        status = e.status_code
        retry_after = None
        header = e.response.headers.get("retry-after") if e.response is not None else None
        if header:
            try:
                retry_after = float(header)
            except ValueError:
                retry_after = None
        body = str(e.body)[:200] if e.body else e.message[:200]
        if status == 429:
            kind: FaultKind = "quota" if "insufficient_quota" in body else "rate_limit"
            return BackendError(kind, f"{where}: HTTP 429 {body}", retry_after=retry_after)
        if status in (401, 403):
            return BackendError("auth", f"{where}: HTTP {status}: check the API key")
        if status >= 500:
            return BackendError("server", f"{where}: HTTP {status} {body}", retry_after=retry_after)
        return BackendError("bad_request", f"{where}: HTTP {status} {body}")
    return BackendError("bad_response", f"{where}: {type(e).__name__}: {e}")


class OpenAIBackend:
    """Chat Completions over HTTP with AsyncOpenAI; one client per backend."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        concurrency: int = 16,
    ) -> None:
        from openai import AsyncOpenAI

        if not model:
            raise BackendConfigError("openai: spec needs a model name, e.g. openai:gpt-4o-mini")
        self.model = model
        self.base_url = validate_base_url(
            base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        )
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if self.base_url == DEFAULT_BASE_URL:
                raise BackendConfigError(
                    "openai: no API key; set OPENAI_API_KEY or give a base_url of a local server"
                )
            key = "not-needed"  # local servers ignore it; the SDK requires one
        self.spec = f"openai:{model}"
        self._key = key
        self._client = AsyncOpenAI(
            base_url=self.base_url, api_key=key, timeout=timeout, max_retries=0, **_transport()
        )
        self._limit = asyncio.Semaphore(concurrency)

    async def _create(
        self, messages: list[Message], rf: dict[str, Any] | None, **kw: Any
    ) -> dict[str, Any]:
        """POST /chat/completions through the SDK's client (its errors, headers and timeout),
        without its per-call conversion of the request into typed parameters and of the
        reply into typed objects: that costs more CPU than the HTTP call itself."""
        args: dict[str, Any] = {"model": self.model, "messages": messages, **kw}
        if rf is not None:
            args["response_format"] = rf
        text = await self._client.post("/chat/completions", body=args, cast_to=str)
        reply = json.loads(text)
        if not isinstance(reply, dict):
            raise TypeError("the reply is not a JSON object")
        return reply

    async def complete(
        self,
        messages: list[Message],
        *,
        temperature: float = 0.7,
        max_tokens: int = 256,
        seed: int | None = None,
        response_format: JsonSchema | None = None,
    ) -> Completion:
        kw: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        if seed is not None:
            kw["seed"] = seed
        try:
            async with self._limit:
                start = time.perf_counter()
                resp, mode = await self._request(messages, response_format, kw)
                latency = time.perf_counter() - start
            choice = resp["choices"][0]
            usage = resp.get("usage") or {}
            content = (choice.get("message") or {}).get("content")
            if content is not None and not isinstance(content, str):
                raise TypeError("the reply's content is not text")
            return Completion(
                text=content or "",
                finish_reason=choice.get("finish_reason") or "stop",
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                latency_s=latency,
                structured=mode,
            )
        except BackendError as e:
            raise self._redacted(e) from None
        except Exception as e:
            # A body that is not JSON, or JSON of the wrong shape: the server's fault, retried.
            raise self._redacted(
                BackendError("malformed", f"{self._where}: unreadable reply ({type(e).__name__})")
            ) from None

    @property
    def _where(self) -> str:
        return f"{self.spec} at {self.base_url}"

    def _redacted(self, e: BackendError) -> BackendError:
        """A server may echo the API key back in an error body; it never leaves this class."""
        text = str(e)
        if self._key and len(self._key) >= 4 and self._key in text:
            return BackendError(e.kind, text.replace(self._key, "***"), retry_after=e.retry_after)
        return e

    async def _request(
        self, messages: list[Message], response_format: JsonSchema | None, kw: dict[str, Any]
    ) -> tuple[dict[str, Any], StructuredMode | None]:
        import openai

        if response_format is None:
            try:
                return await self._create(messages, None, **kw), None
            except openai.OpenAIError as e:
                raise _classify(e, self._where) from None
        known = _server_modes.get(self.base_url)
        first_error: Exception | None = None
        for mode in _MODES[_MODES.index(known) :] if known else _MODES:
            try:
                resp = await self._create(messages, _response_format(mode, response_format), **kw)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as e:
                first_error = first_error or e
                continue
            except openai.InternalServerError as e:
                # llama.cpp's server answers 500 to a response_format it does not know: degrade.
                # Any other 500 is a server fault, retried like one, and settles nothing.
                if "response_format" not in str(e.body or e.message):
                    raise _classify(e, self._where) from None
                first_error = first_error or e
                continue
            except openai.OpenAIError as e:
                raise _classify(e, self._where) from None
            _server_modes[self.base_url] = mode
            return resp, mode
        assert first_error is not None
        raise _classify(first_error, self._where)

    async def check(self) -> None:
        """Reach the server once (GET /models) so that a wrong URL fails before an episode."""
        import openai

        try:
            await self._client.models.list()
        except (openai.APIConnectionError, openai.APITimeoutError) as e:
            raise BackendConfigError(
                f"cannot reach {self.base_url} ({_classify(e, self.spec)}); check --base-url "
                "or OPENAI_BASE_URL"
            ) from None
        except openai.AuthenticationError:
            raise BackendConfigError(
                f"{self.base_url} refused the API key (HTTP 401); check OPENAI_API_KEY"
            ) from None
        except openai.APIStatusError:
            return None  # some servers lack /models; a real call will tell

    async def aclose(self) -> None:
        await self._client.close()


def server_mode(base_url: str) -> StructuredMode | None:
    """The structured-output mode remembered for a server, if any call has settled it."""
    return _server_modes.get(base_url.rstrip("/"))
