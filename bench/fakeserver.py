"""An OpenAI-compatible Chat Completions server with a fixed latency and token rate, for
measurement only.

Every call is answered after ``latency + completion_tokens / tokens_per_s`` seconds; nothing else
varies, so what a client achieves against it is the client's own limit. It is written on
``asyncio.Protocol`` with the standard library alone (no framework per request) and runs in its
own process; ``bench/capacity.py`` measures how many calls per second it can serve, which must be
well above what a benchmark asks of it.

Replies: plain text of ``--reply-tokens`` words (never the end marker, so an episode runs to its
turn limit), or, when the request carries a JSON schema in ``response_format``, the smallest
instance of that schema (every criterion "met"). Usage counts prompt tokens as characters / 4,
or exactly with ``--tokenizer smollm2`` (the embedded model's vocabulary, through llama.cpp).

    python bench/fakeserver.py --port 8011 --latency 1.0 --tokens-per-s 0

prints ``ready PORT`` on stdout once it listens. ``GET /stats`` gives the calls served and the
process's CPU seconds, so a benchmark can check the server was not its bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

WORD = "okay"


def schema_instance(schema: Any) -> Any:
    """The smallest value that a (grammar-style) JSON schema accepts; booleans are true."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {k: schema_instance(v) for k, v in props.items()}
    if kind == "array":
        items = schema.get("items") or {}
        # one item where the items are named (evidence turns), else as few as allowed
        n = max(int(schema.get("minItems", 0)), 1 if "enum" in items else 0)
        return [schema_instance(items) for _ in range(n)]
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "string":
        return "met"
    return None


class Server:
    def __init__(
        self,
        latency: float,
        tokens_per_s: float,
        reply_tokens: int,
        count_tokens: Callable[[str], int],
    ) -> None:
        self.latency = latency
        self.tokens_per_s = tokens_per_s
        self.reply_tokens = reply_tokens
        self.count_tokens = count_tokens
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.text = " ".join([WORD] * reply_tokens)

    def answer(self, body: bytes) -> tuple[float, bytes]:
        """(delay, response body) for one chat completion request."""
        req = json.loads(body)
        prompt = "".join(str(m.get("content") or "") for m in req.get("messages", []))
        prompt_tokens = self.count_tokens(prompt)
        fmt = req.get("response_format") or {}
        schema = fmt.get("schema") or (fmt.get("json_schema") or {}).get("schema")
        if schema is not None:
            text = json.dumps(schema_instance(schema))
            completion_tokens = self.count_tokens(text)
        else:
            text = self.text
            completion_tokens = self.reply_tokens
        self.calls += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        reply = {
            "id": f"cmpl-{self.calls}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        delay = self.latency
        if self.tokens_per_s > 0:
            delay += completion_tokens / self.tokens_per_s
        return delay, json.dumps(reply).encode()

    def stats(self) -> bytes:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return json.dumps(
            {
                "calls": self.calls,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "cpu_s": usage.ru_utime + usage.ru_stime,
            }
        ).encode()


MODELS = json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}).encode()


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection(asyncio.Protocol):
    """HTTP/1.1 with keep-alive; requests on one connection are answered in order."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            method, path, _ = lines[0].split(" ", 2)
            self.handle(method, path, body)

    def handle(self, method: str, path: str, body: bytes) -> None:
        if method == "POST" and path.endswith("/chat/completions"):
            try:
                delay, out = self.server.answer(body)
            except (ValueError, TypeError, AttributeError) as e:
                self.send(_response("400 Bad Request", json.dumps({"error": str(e)}).encode()))
                return
            self.loop.call_later(delay, self.send, _response("200 OK", out))
        elif method == "GET" and path.endswith("/models"):
            self.send(_response("200 OK", MODELS))
        elif method == "GET" and path.endswith("/stats"):
            self.send(_response("200 OK", self.server.stats()))
        else:
            self.send(_response("404 Not Found", b'{"error": "not found"}'))

    def send(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)


def _token_counter(name: str | None) -> Callable[[str], int]:
    if name is None:
        return lambda text: max(1, len(text) // 4)
    if name != "smollm2":
        raise SystemExit(f"error: unknown --tokenizer {name!r}; use smollm2")
    from llama_cpp import Llama

    from simulator.llm._local import smollm2_path

    vocab = Llama(model_path=str(smollm2_path()), vocab_only=True, verbose=False)
    return lambda text: len(vocab.tokenize(text.encode(), add_bos=False, special=True))


async def serve(args: argparse.Namespace) -> None:
    server = Server(
        args.latency, args.tokens_per_s, args.reply_tokens, _token_counter(args.tokenizer)
    )
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(
        lambda: Connection(server), args.host, args.port, backlog=4096, reuse_address=True
    )
    port = srv.sockets[0].getsockname()[1]
    print(f"ready {port}", flush=True)
    async with srv:
        await srv.serve_forever()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    p.add_argument("--latency", type=float, default=1.0, help="seconds before every reply")
    p.add_argument(
        "--tokens-per-s", type=float, default=0.0, help="generation rate added to the latency"
    )
    p.add_argument("--reply-tokens", type=int, default=40, help="words in a plain reply")
    p.add_argument("--tokenizer", choices=["smollm2"], default=None)
    args = p.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if os.environ.get("PYTHONASYNCIODEBUG"):
        print("warning: asyncio debug mode slows the server", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
