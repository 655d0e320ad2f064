"""A fault-injecting HTTP proxy for tests: it sits in front of a real OpenAI-compatible server
(llama.cpp's) and, for a chosen share of chat-completion requests, answers with a fault
instead of (or on top of) the server's reply.

Faults, taken in turn so that every kind occurs:

- ``429``: rate limited, with ``Retry-After``;
- ``500`` and ``503``: server errors (``503`` with ``Retry-After``);
- ``reset``: the connection is reset (TCP RST) without a reply;
- ``slow``: the reply comes later than the client's timeout (a canned one: the server is not
  asked, so an abandoned request does not hold up the real ones queued behind it);
- ``truncated``: the body stops half-way (the declared Content-Length is not met);
- ``malformed``: a 200 whose body is not JSON;
- ``length``: the server's real reply, cut in half, with ``finish_reason`` = ``length``.

Other modes for single tests: ``auth_after`` answers 401 to every chat request after that
many (a key revoked mid-run), ``reject_key`` answers 401 to every request, and ``echo_auth``
puts the request's Authorization header into a 500 body (a server that leaks the key back).
Requests other than chat completions pass through untouched.

Runs its own event loop in a thread; ``with FaultProxy(upstream) as proxy: proxy.url``.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

KINDS = ("429", "500", "503", "reset", "slow", "truncated", "malformed", "length")


@dataclass
class FaultProxy:
    upstream: str  # e.g. http://127.0.0.1:8080 (no /v1)
    rate: float = 0.2
    kinds: tuple[str, ...] = KINDS
    seed: int = 0
    slow_s: float = 3.0
    retry_after_s: float = 0.2
    auth_after: int | None = None
    echo_auth: bool = False
    reject_key: bool = False
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._next_kind = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def set(self, **changes: Any) -> None:
        """Change the fault settings while running (e.g. ``rate=0`` for a clean rerun)."""
        with self._lock:
            for k, v in changes.items():
                setattr(self, k, v)

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        me = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not me]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._client.aclose()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._client = httpx.AsyncClient(base_url=self.upstream, timeout=600)
        self._server = loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    # ------------------------------------------------------------------ faults

    def _choose(self, path: str) -> str | None:
        with self._lock:
            if self.reject_key:
                return "401"
            if not path.rstrip("/").endswith("/chat/completions"):
                return None
            self.counts["requests"] += 1
            if self.echo_auth:
                return "echo_auth"
            if self.auth_after is not None and self.counts["requests"] > self.auth_after:
                return "401"
            if self._rng.random() >= self.rate:
                return None
            kind = self.kinds[self._next_kind % len(self.kinds)]
            self._next_kind += 1
            self.counts[kind] += 1
            return kind

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            fault = self._choose(path)
            await self._answer(writer, method, path, headers, body, fault)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a client that went away, or the proxy shutting down
        finally:
            if not writer.is_closing():
                writer.close()

    async def _answer(
        self,
        writer: asyncio.StreamWriter,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        fault: str | None,
    ) -> None:
        if fault == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        if fault in ("429", "500", "503", "401"):
            extra = {"Retry-After": f"{self.retry_after_s:g}"} if fault in ("429", "503") else {}
            message = {"401": "invalid api key"}.get(fault, f"injected fault {fault}")
            payload = {"error": {"message": message, "type": "injected", "code": int(fault)}}
            await _send(writer, int(fault), json.dumps(payload).encode(), extra)
            return
        if fault == "echo_auth":
            payload = {"error": {"message": f"bad header {headers.get('authorization', '')}"}}
            await _send(writer, 500, json.dumps(payload).encode())
            return
        if fault == "malformed":
            await _send(writer, 200, b'{"id": "x", "choices": [{"message": {"content": "hi"')
            return
        if fault == "slow":
            await asyncio.sleep(self.slow_s)
            await _send(writer, 200, json.dumps(_CANNED).encode())
            return
        forward = {
            k: v for k, v in headers.items() if k in ("content-type", "authorization", "accept")
        }
        up = await self._client.request(method, path, content=body, headers=forward)
        data = up.content
        if fault == "length" and up.status_code == 200:
            reply = json.loads(data)
            choice = reply["choices"][0]
            text = choice["message"].get("content") or ""
            choice["message"]["content"] = text[: max(1, len(text) // 2)]
            choice["finish_reason"] = "length"
            data = json.dumps(reply).encode()
        if fault == "truncated":
            head = (
                f"HTTP/1.1 {up.status_code} OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + data[: len(data) // 2])
            await writer.drain()
            return
        await _send(writer, up.status_code, data)


_CANNED = {
    "id": "slow",
    "object": "chat.completion",
    "created": 0,
    "model": "slow",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "late"}, "finish_reason": "stop"}
    ],
}


async def _send(
    writer: asyncio.StreamWriter, status: int, data: bytes, extra: dict[str, str] | None = None
) -> None:
    lines = [
        f"HTTP/1.1 {status} X",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (extra or {}).items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
    await writer.drain()
