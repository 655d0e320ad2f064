"""The measurement server's own capacity, checked with bare clients before anything is measured
against it.

At zero latency, many calls in flight: how many calls per second the server answers, and how
much of a core it uses per call. Two clients: plain aiohttp (the cheapest Python client, so
that the server rather than the client is the limit) and AsyncOpenAI (``create``, the SDK as
most code calls it). The benchmarks ask at most about 1000 calls per second of it (1024
episodes in flight at 1 s per call); the server must answer several times that.

    python bench/capacity.py
    python bench/capacity.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import FakeServer, machine, median, raise_fd_limit, write_json

MESSAGES = [
    {"role": "system", "content": "You are a careful clinician. " * 60},
    {"role": "user", "content": "I have had a headache for three days. " * 10},
]


async def load(server: FakeServer, client: str, calls: int, concurrency: int) -> dict[str, Any]:
    body = {"model": "fake", "messages": MESSAGES, "max_tokens": 64}
    limit = asyncio.Semaphore(concurrency)
    if client == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
        url = f"{server.base_url}/chat/completions"

        async def one() -> None:
            async with limit, session.post(url, json=body) as r:
                assert (await r.json())["choices"]

        close: Any = session.close
    else:
        from openai import AsyncOpenAI

        oai = AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)

        async def one() -> None:
            async with limit:
                resp = await oai.chat.completions.create(**body)  # type: ignore[call-overload]
                assert resp.choices

        close = oai.close
    await asyncio.gather(*(one() for _ in range(min(calls, 200))))  # warm up connections
    before = server.stats()
    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(calls)))
    wall = time.perf_counter() - t0
    after = server.stats()
    await close()
    served = after["calls"] - before["calls"]
    server_cpu = after["cpu_s"] - before["cpu_s"]
    return {
        "client": client,
        "calls_per_s": served / wall,
        "server_cpu_ms_per_call": server_cpu / served * 1000,
        "server_cpu_share": server_cpu / wall,
        "server_limit_calls_per_s": served / server_cpu,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"concurrency": args.concurrency, "clients": []}
    with FakeServer(0.0) as server:
        for client in ("aiohttp", "openai"):
            runs = [
                await load(server, client, args.calls, args.concurrency) for _ in range(args.runs)
            ]
            row: dict[str, Any] = {
                k: median([r[k] for r in runs]) for k in runs[0] if k != "client"
            }
            row["client"] = client
            out["clients"].append(row)
            print(
                f"{client:8s} client, {args.concurrency} in flight, no latency: server answered "
                f"{row['calls_per_s']:.0f} calls/s using {row['server_cpu_share']:.0%} of a core "
                f"({row['server_cpu_ms_per_call']:.3f} ms CPU per call: at most "
                f"{row['server_limit_calls_per_s']:.0f} calls/s on one core)",
                flush=True,
            )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.smoke:
        args.calls, args.concurrency, args.runs = 100, 16, 1
    raise_fd_limit()
    print(f"machine: {machine()}", flush=True)
    write_json(args.out, asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
