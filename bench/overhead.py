"""clinsim against a bare AsyncOpenAI loop making the same calls, at 50 ms per call: episodes
per second (their ratio isolates clinsim's own cost from the HTTP client's and the server's)
and CPU time per call (clinsim's harness CPU per turn beyond the bare client's).

Three bare loops replay, call for call, the requests clinsim made (rebuilt from its
transcripts): the same messages, seeds and token limits, at the same number of episodes in
flight, against the same server, in the same process:

- ``bare``: AsyncOpenAI as most code calls it (``chat.completions.create``, default transport);
- ``sdk-aiohttp``: AsyncOpenAI with its aiohttp transport, the JSON body posted as it is (the
  path clinsim took before it sent requests itself);
- ``lean``: clinsim's own client path (its aiohttp transport), so that clinsim's CPU per call
  less this loop's is the harness's own.

The harness's CPU per turn is also measured directly: the same episodes against a model inside
the process that answers at once (``InstantBackend``): no HTTP client, no server, only
clinsim's own work (the graph, the records, the store). Runs alternate (clinsim, bare, ...,
clinsim, ...) so that drift on a shared machine falls on all; the median of each is reported.

    python bench/overhead.py                 # concurrency 16 and 64, 5 runs each
    python bench/overhead.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    FakeServer,
    bare_loop,
    bench_episodes,
    calls_of,
    clinsim_batch,
    int_list,
    machine,
    median,
    raise_fd_limit,
    write_json,
)


async def compare(server: FakeServer, concurrency: int, n: int, runs: int) -> dict[str, Any]:
    episodes = bench_episodes(n)
    first = await clinsim_batch(server.base_url, episodes, concurrency, keep_results=True)
    calls = [calls_of(first.results[ep.key], ep) for ep in episodes]
    assert sum(len(c) for c in calls) == first.calls
    loops = ("clinsim", "bare", "sdk-aiohttp", "lean", "alone")
    runs_of: dict[str, list[Any]] = {k: [] for k in loops}
    for _ in range(runs):
        for k in loops:
            gc.collect()
            if k == "clinsim":
                r = await clinsim_batch(server.base_url, episodes, concurrency)
            elif k == "alone":
                r = await clinsim_batch(None, episodes, concurrency)
            else:
                client = "openai" if k == "bare" else k
                r = await bare_loop(server.base_url, calls, concurrency, client=client)
            runs_of[k].append(r)

    def rate(k: str) -> float:
        return median([r.eps_per_s for r in runs_of[k]])

    def cpu_ms(k: str) -> float:
        return median([r.cpu_s / r.calls for r in runs_of[k]]) * 1000

    return {
        "concurrency": concurrency,
        "episodes": n,
        "calls_per_episode": first.calls_per_episode,
        "clinsim_eps_per_s": rate("clinsim"),
        "bare_eps_per_s": rate("bare"),
        "sdk_aiohttp_eps_per_s": rate("sdk-aiohttp"),
        "lean_eps_per_s": rate("lean"),
        "ratio": rate("clinsim") / rate("bare"),
        "ratio_sdk_aiohttp": rate("clinsim") / rate("sdk-aiohttp"),
        "ratio_lean": rate("clinsim") / rate("lean"),
        "clinsim_cpu_ms_per_call": cpu_ms("clinsim"),
        "bare_cpu_ms_per_call": cpu_ms("bare"),
        "sdk_aiohttp_cpu_ms_per_call": cpu_ms("sdk-aiohttp"),
        "lean_cpu_ms_per_call": cpu_ms("lean"),
        "harness_cpu_ms_per_turn": cpu_ms("clinsim") - cpu_ms("lean"),
        "harness_alone_cpu_ms_per_turn": cpu_ms("alone"),
        "runs": {
            k: {
                "eps_per_s": [r.eps_per_s for r in rs],
                "cpu_ms_per_call": [r.cpu_s / r.calls * 1000 for r in rs],
                "calls": [r.calls for r in rs],
                "episodes_done": [r.done for r in rs],
            }
            for k, rs in runs_of.items()
        },
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"latency_s": args.latency, "levels": []}
    with FakeServer(args.latency) as server:
        await clinsim_batch(server.base_url, bench_episodes(8), 4)  # warm up imports and caches
        for c in args.levels:
            row = await compare(server, c, max(args.episodes, c * 2), args.runs)
            out["levels"].append(row)
            print(
                f"concurrency {c:4d}: clinsim {row['clinsim_eps_per_s']:.2f} episodes/s; bare "
                f"AsyncOpenAI {row['bare_eps_per_s']:.2f} ({row['ratio']:.1%}); AsyncOpenAI with "
                f"aiohttp {row['sdk_aiohttp_eps_per_s']:.2f} ({row['ratio_sdk_aiohttp']:.1%}); "
                f"clinsim's client path alone {row['lean_eps_per_s']:.2f} "
                f"({row['ratio_lean']:.1%}). CPU per call: clinsim "
                f"{row['clinsim_cpu_ms_per_call']:.2f} ms, bare {row['bare_cpu_ms_per_call']:.2f}, "
                f"sdk-aiohttp {row['sdk_aiohttp_cpu_ms_per_call']:.2f}, lean "
                f"{row['lean_cpu_ms_per_call']:.2f}: harness {row['harness_cpu_ms_per_turn']:.2f} "
                f"ms per turn; harness alone (no HTTP) "
                f"{row['harness_alone_cpu_ms_per_turn']:.2f} ms per turn",
                flush=True,
            )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--levels", type=int_list, default=[16, 64])
    p.add_argument("--episodes", type=int, default=400)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--smoke", action="store_true", help="a few seconds: the CI check")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.smoke:
        args.levels, args.episodes, args.runs = [4], 8, 1
    raise_fd_limit()
    print(f"machine: {machine()}", flush=True)
    write_json(args.out, asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
