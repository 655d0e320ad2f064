"""Episodes per second against the ideal, at 1 s per call, for 1 to 1024 episodes in flight;
and side by side, the same episodes through a naive sequential loop.

The ideal for C episodes in flight is C / (calls per episode x latency): every episode always
waiting on the server, and nothing else taking time. Each level runs ``--waves`` x C episodes
(so the ramp at the start and the tail at the end are a fixed share), ``--runs`` times; the
median is reported. The measurement server runs in its own process and reports its CPU time,
so that a shortfall can be told apart from a busy server.

    python bench/concurrency.py                  # levels 1..1024, 3 runs each, + naive loop
    python bench/concurrency.py --smoke          # seconds: what CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    FakeServer,
    bench_episodes,
    calls_of,
    clinsim_batch,
    int_list,
    machine,
    median,
    raise_fd_limit,
    write_json,
)


def naive_loop(base_url: str, episodes: list[list[tuple[list[Any], int, int]]]) -> float:
    """The way AgentClinic and MediQ run: one episode after another, one blocking call at a
    time (the synchronous OpenAI client). Returns the wall time."""
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=600.0)
    t0 = time.perf_counter()
    for calls in episodes:
        for messages, seed, max_tokens in calls:
            resp = client.chat.completions.create(
                model="fake", messages=messages, temperature=0.7, max_tokens=max_tokens, seed=seed
            )
            assert resp.choices[0].message.content
    wall = time.perf_counter() - t0
    client.close()
    return wall


async def level(
    server: FakeServer, concurrency: int, waves: int, runs: int, start_rate: float
) -> dict[str, Any]:
    episodes = bench_episodes(max(concurrency * waves, 2))
    rates, calls_per_ep, server_cpu, cpu_per_call = [], 0.0, [], []
    for _ in range(runs):
        before = server.stats()
        rate = None if start_rate == 0 else -1.0 if start_rate < 0 else start_rate
        r = await clinsim_batch(server.base_url, episodes, concurrency, start_rate=rate)
        after = server.stats()
        assert r.failed == 0, f"{r.failed} episodes failed"
        rates.append(r.eps_per_s)
        calls_per_ep = r.calls_per_episode
        server_cpu.append((after["cpu_s"] - before["cpu_s"]) / r.wall_s)
        cpu_per_call.append(r.cpu_s / r.calls)
    return {
        "concurrency": concurrency,
        "episodes": len(episodes),
        "calls_per_episode": calls_per_ep,
        "eps_per_s": median(rates),
        "runs": rates,
        "server_cpu_share": median(server_cpu),
        "client_cpu_ms_per_call": median(cpu_per_call) * 1000,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"latency_s": args.latency, "start_rate": args.start_rate, "levels": []}
    with FakeServer(args.latency) as server:
        for c in args.levels:
            row = await level(server, c, args.waves, args.runs, args.start_rate)
            ideal = c / (row["calls_per_episode"] * args.latency)
            row["ideal_eps_per_s"] = ideal
            row["share_of_ideal"] = row["eps_per_s"] / ideal
            out["levels"].append(row)
            print(
                f"concurrency {c:5d}: {row['eps_per_s']:8.2f} episodes/s, ideal {ideal:8.2f} "
                f"({row['share_of_ideal']:.1%}); {row['calls_per_episode']:.1f} calls/episode; "
                f"clinsim CPU {row['client_cpu_ms_per_call']:.2f} ms/call; "
                f"server CPU {row['server_cpu_share']:.0%} of a core",
                flush=True,
            )
        if args.naive:
            c = args.naive_concurrency
            episodes = bench_episodes(args.naive_episodes)
            first = await clinsim_batch(server.base_url, episodes, c, keep_results=True)
            calls = [calls_of(first.results[ep.key], ep) for ep in episodes]
            rates = [first.eps_per_s]
            for _ in range(args.runs - 1):
                rates.append((await clinsim_batch(server.base_url, episodes, c)).eps_per_s)
            naive_wall = naive_loop(server.base_url, calls)
            naive = len(episodes) / naive_wall
            out["naive"] = {
                "episodes": len(episodes),
                "concurrency": c,
                "clinsim_eps_per_s": median(rates),
                "clinsim_runs": rates,
                "naive_eps_per_s": naive,
                "naive_wall_s": naive_wall,
                "ratio": median(rates) / naive,
            }
            print(
                f"same {len(episodes)} episodes: naive sequential loop {naive:.3f} episodes/s, "
                f"clinsim at concurrency {c} {median(rates):.2f} episodes/s: "
                f"{median(rates) / naive:.1f}x",
                flush=True,
            )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--latency", type=float, default=1.0)
    p.add_argument("--levels", type=int_list, default=[1, 16, 64, 256, 1024])
    p.add_argument("--waves", type=int, default=3, help="episodes per level = waves x level")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--naive", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--naive-episodes", type=int, default=64)
    p.add_argument("--naive-concurrency", type=int, default=64)
    p.add_argument(
        "--start-rate",
        type=float,
        default=-1.0,
        help="episodes started per second (0: all at once; default: clinsim's default)",
    )
    p.add_argument("--smoke", action="store_true", help="a few seconds: the CI check")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.smoke:
        args.latency, args.levels, args.waves, args.runs = 0.05, [1, 16], 2, 1
        args.naive_episodes, args.naive_concurrency = 4, 4
    raise_fd_limit()
    print(f"machine: {machine()}", flush=True)
    write_json(args.out, asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
