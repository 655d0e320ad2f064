"""``openai:MODEL`` — any OpenAI-compatible Chat Completions server.

Requests go out with aiohttp directly: ``POST {base_url}/chat/completions`` with the JSON body
and a bearer key, the reply read as JSON. The OpenAI SDK (``AsyncOpenAI``, even with its aiohttp
transport) makes the same request through layers of request and response objects that cost
more CPU than the HTTP call itself, about 1 ms a call on 2 cores; on a small machine that CPU
decides how many episodes can be in flight (bench/RESULTS.md). ``CLINSIM_HTTP=sdk`` sends
through ``AsyncOpenAI`` instead, should a server need what only the SDK does. Nothing is
retried here: ``simulator.llm.with_retries`` retries in one place.

Structured output degrades from ``json_schema`` to ``json_object`` with a schema (llama.cpp's
server) to a plain request (prompt plus tolerant parsing), and what a server accepts is
remembered per base URL for the life of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

from simulator.llm._base import (
    BackendConfigError,
    BackendError,
    Completion,
    FaultKind,
    JsonSchema,
    LoopLimit,
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


class HTTPStatusError(Exception):
    """A reply with an error status: its status, body (as text) and Retry-After."""

    def __init__(self, status: int, body: str, retry_after: str | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.retry_after = retry_after


def _error_text(body: str) -> str:
    """The server's message: ``error.message`` of an OpenAI-style body, else the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        return json.dumps(error)
    return body.strip()


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header in seconds: delta-seconds ("120") or an HTTP-date ("Wed, 21 Oct
    2026 07:28:00 GMT"), never negative; None when absent or unreadable. How long is honoured
    is capped by the retry policy (``RetryPolicy.max_delay_s``, 30 s)."""
    import email.utils
    import math
    import time

    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _classify(e: HTTPStatusError, where: str) -> BackendError:
    status, text = e.status, _error_text(e.body)[:200]
    retry_after = retry_after_seconds(e.retry_after)
    if status == 429:
        kind: FaultKind = "quota" if "insufficient_quota" in e.body else "rate_limit"
        return BackendError(kind, f"{where}: HTTP 429 {text}", retry_after=retry_after)
    if status in (401, 403):
        return BackendError("auth", f"{where}: HTTP {status}: check the API key")
    if status >= 500:
        return BackendError("server", f"{where}: HTTP {status} {text}", retry_after=retry_after)
    return BackendError("bad_request", f"{where}: HTTP {status} {text}")


class _PerLoop:
    """One HTTP client per event loop that uses it: an aiohttp session, and the SDK's httpx
    client, belong to the loop they were made in.

    Code that drives one backend from several loops in turn (``asyncio.run`` per call) gets a
    client for each, closed with its connections when that loop shuts down its async
    generators (``asyncio.run`` does), or else dropped once the loop has closed, when the next
    client is made; ``aclose`` closes them all."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        # loop -> (client, its closer): the loop holds async generators only weakly
        self._clients: dict[asyncio.AbstractEventLoop, tuple[Any, Any]] = {}

    async def get(self) -> Any:
        loop = asyncio.get_running_loop()
        held = self._clients.get(loop)
        if held is not None:
            return held[0]
        await self._drop_dead()
        client = self._make()
        # A started async generator is finalised by the loop's shutdown_asyncgens(), in the
        # loop, before it closes: the one hook asyncio gives for "this loop is ending".
        closer = _close_at_shutdown(client)
        await anext(closer)
        self._clients[loop] = (client, closer)
        return client

    async def _drop_dead(self) -> None:
        for loop in [lp for lp in self._clients if lp.is_closed()]:
            await _close_quietly(self._clients.pop(loop)[0])

    async def aclose(self) -> None:
        await self._drop_dead()
        here = asyncio.get_running_loop()
        for loop, (client, _) in self._clients.items():
            if loop is here:
                await client.close()
            else:  # a loop still running in another thread
                asyncio.run_coroutine_threadsafe(client.close(), loop)
        self._clients.clear()


async def _close_at_shutdown(client: Any) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await client.close()


async def _close_quietly(client: Any) -> None:
    """Close a client whose loop has closed: aiohttp then only marks it closed; httpx may try
    to reach the dead loop, and its sockets are freed with it anyway."""
    with contextlib.suppress(RuntimeError):
        await client.close()


class _AiohttpTransport:
    """Requests with aiohttp, one session (connection pool) per event loop."""

    def __init__(self, base_url: str, key: str, timeout: float) -> None:
        self.base_url = base_url
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "clinsim",
        }

        def session() -> Any:
            import aiohttp

            return aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),  # calls in flight: the backend's limit
                timeout=aiohttp.ClientTimeout(total=timeout),
                headers=headers,
                trust_env=True,  # HTTP(S)_PROXY and NO_PROXY, as the SDK honours them
            )

        self._sessions = _PerLoop(session)

    async def send(self, method: str, path: str, payload: Any = None) -> bytes:
        import aiohttp

        session = await self._sessions.get()
        body = None if payload is None else json.dumps(payload).encode()
        try:
            async with session.request(method, self.base_url + path, data=body) as resp:
                data: bytes = await resp.read()
                if resp.status >= 400:
                    text = data.decode(errors="replace")
                    raise HTTPStatusError(resp.status, text, resp.headers.get("Retry-After"))
                return data
        except TimeoutError:
            raise _Unreachable("timeout", "request timed out") from None
        except aiohttp.ClientError as e:
            raise _Unreachable(
                "connection", f"connection failed ({e or type(e).__name__})"
            ) from None

    async def aclose(self) -> None:
        await self._sessions.aclose()


class _SdkTransport:
    """The same requests through ``AsyncOpenAI`` (``CLINSIM_HTTP=sdk``), one per event loop."""

    def __init__(self, base_url: str, key: str, timeout: float) -> None:
        from openai import AsyncOpenAI

        self._clients = _PerLoop(
            lambda: AsyncOpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)
        )

    async def send(self, method: str, path: str, payload: Any = None) -> bytes:
        import openai

        client = await self._clients.get()
        try:
            if method == "GET":
                text = await client.get(path, cast_to=str)
            else:
                text = await client.post(path, body=payload, cast_to=str)
        except openai.APITimeoutError:
            raise _Unreachable("timeout", "request timed out") from None
        except openai.APIConnectionError as e:
            cause = e.__cause__ or e
            why = str(cause) or type(cause).__name__
            raise _Unreachable("connection", f"connection failed ({why})") from None
        except openai.APIStatusError as e:
            body_text = e.response.text if e.response is not None else e.message
            retry_after = e.response.headers.get("retry-after") if e.response is not None else None
            raise HTTPStatusError(e.status_code, body_text, retry_after) from None
        return text.encode()

    async def aclose(self) -> None:
        await self._clients.aclose()


class _Unreachable(Exception):
    """No reply: a timeout or a failed connection."""

    def __init__(self, kind: FaultKind, why: str) -> None:
        super().__init__(why)
        self.kind: FaultKind = kind


class OpenAIBackend:
    """Chat Completions over HTTP; one connection pool per backend (and event loop)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        concurrency: int = 16,
    ) -> None:
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
            key = "not-needed"  # local servers ignore it; some proxies want one
        self.spec = f"openai:{model}"
        self._key = key
        transport = _SdkTransport if os.environ.get("CLINSIM_HTTP") == "sdk" else _AiohttpTransport
        self._http = transport(self.base_url, key, timeout)
        self._limit = LoopLimit(concurrency)

    async def _send(self, method: str, path: str, payload: Any = None) -> bytes:
        """One request. An error status raises HTTPStatusError, with the key taken out of
        the body (a server may echo it back); no reply raises _Unreachable."""
        try:
            return await self._http.send(method, path, payload)
        except HTTPStatusError as e:
            if len(self._key) >= 4 and self._key in e.body:
                e.body = e.body.replace(self._key, "***")
            raise

    async def _create(
        self, messages: list[Message], rf: dict[str, Any] | None, **kw: Any
    ) -> dict[str, Any]:
        args: dict[str, Any] = {"model": self.model, "messages": messages, **kw}
        if rf is not None:
            args["response_format"] = rf
        reply = json.loads(await self._send("POST", "/chat/completions", args))
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
        except _Unreachable as e:
            raise self._redacted(BackendError(e.kind, f"{self._where}: {e}")) from None
        except (ValueError, LookupError, TypeError, AttributeError) as e:
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
        if response_format is None:
            try:
                return await self._create(messages, None, **kw), None
            except HTTPStatusError as e:
                raise _classify(e, self._where) from None
        known = _server_modes.get(self.base_url)
        first_error: HTTPStatusError | None = None
        for mode in _MODES[_MODES.index(known) :] if known else _MODES:
            try:
                resp = await self._create(messages, _response_format(mode, response_format), **kw)
            except HTTPStatusError as e:
                # A server that does not know a response_format refuses it: 400 or 422, or
                # llama.cpp's 500 that names it. Any other status settles nothing.
                refused = e.status in (400, 422) or (
                    e.status == 500 and "response_format" in e.body
                )
                if not refused:
                    raise _classify(e, self._where) from None
                first_error = first_error or e
                continue
            _server_modes[self.base_url] = mode
            return resp, mode
        assert first_error is not None
        raise _classify(first_error, self._where)

    async def check(self) -> None:
        """Reach the server once (GET /models) so that a wrong URL fails before an episode."""
        try:
            await self._send("GET", "/models")
        except _Unreachable as e:
            raise BackendConfigError(
                f"cannot reach {self.base_url} ({self.spec}: {e}); check --base-url or "
                "OPENAI_BASE_URL"
            ) from None
        except HTTPStatusError as e:
            if e.status == 401:
                raise BackendConfigError(
                    f"{self.base_url} refused the API key (HTTP 401); check OPENAI_API_KEY"
                ) from None
            return None  # some servers lack /models; a real call will tell

    async def aclose(self) -> None:
        await self._http.aclose()


def server_mode(base_url: str) -> StructuredMode | None:
    """The structured-output mode remembered for a server, if any call has settled it."""
    return _server_modes.get(base_url.rstrip("/"))
