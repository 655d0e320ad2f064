"""Peak memory per episode in flight.

Each level runs in a fresh process: after a warm-up batch (imports, first connections), its
resident set is noted; then C episodes run at once against the measurement server with calls
slow enough (``--latency``, default 2 s) that all C are in flight together; the peak resident
set (VmHWM) less the warm-up figure, divided by C, is the memory each episode in flight costs,
everything included: LangGraph state, HTTP connections and buffers, asyncio tasks, records.

    python bench/memory.py                   # 64, 256 and 1024 in flight, 3 runs each
    python bench/memory.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    FakeServer,
    bench_episodes,
    clinsim_batch,
    int_list,
    machine,
    median,
    raise_fd_limit,
    write_json,
)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


async def worker(base_url: str, concurrency: int) -> dict[str, Any]:
    await clinsim_batch(base_url, bench_episodes(32), 16)  # warm-up
    base_kb = _status_kb("VmRSS")
    run = await clinsim_batch(base_url, bench_episodes(concurrency), concurrency)
    peak_kb = _status_kb("VmHWM")
    return {
        "concurrency": concurrency,
        "failed": run.failed,
        "base_mb": base_kb / 1024,
        "peak_mb": peak_kb / 1024,
        "mb_per_episode": (peak_kb - base_kb) / 1024 / concurrency,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--latency", type=float, default=2.0)
    p.add_argument("--levels", type=int_list, default=[64, 256, 1024])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="a few seconds: the CI check")
    p.add_argument("--out", type=Path)
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    raise_fd_limit()
    if args.worker:
        print(json.dumps(asyncio.run(worker(args.worker[0], int(args.worker[1])))))
        return
    if args.smoke:
        args.latency, args.levels, args.runs = 0.2, [8], 1
    print(f"machine: {machine()}", flush=True)
    out: dict[str, Any] = {"latency_s": args.latency, "levels": []}
    with FakeServer(args.latency) as server:
        for c in args.levels:
            runs = []
            for _ in range(args.runs):
                cmd = [sys.executable, __file__, "--worker", server.base_url, str(c)]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            assert not any(r["failed"] for r in runs), runs
            row = {
                "concurrency": c,
                "mb_per_episode": median([r["mb_per_episode"] for r in runs]),
                "peak_mb": median([r["peak_mb"] for r in runs]),
                "base_mb": median([r["base_mb"] for r in runs]),
                "runs": runs,
            }
            out["levels"].append(row)
            print(
                f"{c:5d} episodes in flight: peak {row['peak_mb']:.0f} MB over a base of "
                f"{row['base_mb']:.0f} MB: {row['mb_per_episode']:.3f} MB per episode",
                flush=True,
            )
    write_json(args.out, out)


if __name__ == "__main__":
    main()
