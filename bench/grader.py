"""Grader calls and tokens per episode: the rubric judge one call per criterion (HealthBench's
way, clinsim's default) against one call per rubric (``--judge-mode batched``).

``--episodes`` episodes are run through clinsim's batch runner (no judge) against the
measurement server, then every transcript is judged in each mode by the judge that the CLI
builds (``judge_from_configs``), pointed at the same server. The server counts prompt and
completion tokens with the embedded model's own tokenizer (SmolLM2's) and answers each grader
request with an instance of its JSON schema, so the counts are those of real prompts; replies
are short, so completion tokens are a floor. The judge's own usage is checked against the
server's counters.

    python bench/grader.py                  # 20 episodes
    python bench/grader.py --smoke          # 2 episodes: what CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    FakeServer,
    bench_episodes,
    clinsim_batch,
    machine,
    median,
    model_config,
    raise_fd_limit,
    write_json,
)

MODES = ("per-criterion", "batched")
FIELDS = ("calls", "prompt_tokens", "completion_tokens")


async def judge_all(server: FakeServer, mode: str, jobs: list[tuple[Any, Any]]) -> dict[str, Any]:
    """Judge every (scenario, transcript) in ``mode``: usage per episode, and the server's
    counters over the same span."""
    from simulator.commands.wiring import judge_from_configs

    judge, backends = judge_from_configs([model_config(server.base_url)], mode=mode, seed=1)
    before = server.stats()
    try:
        outs = [await judge.judge(scenario, transcript) for scenario, transcript in jobs]
    finally:
        for b in backends:
            await b.aclose()
    after = server.stats()
    per_episode = {f: [int(getattr(o.judge.usage, f)) for o in outs] for f in FIELDS}
    server_delta = {f: int(after[f]) - int(before[f]) for f in FIELDS}
    judge_sums = {f: sum(xs) for f, xs in per_episode.items()}
    return {
        "mode": mode,
        "per_episode": per_episode,
        "median": {f: median(xs) for f, xs in per_episode.items()},
        "mean": {f: statistics.fmean(xs) for f, xs in per_episode.items()},
        "unscored": sum(o.unscored for o in outs),
        "judge_sums": judge_sums,
        "server_counted": server_delta,
        "server_agrees": judge_sums == server_delta,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    episodes = bench_episodes(args.episodes)
    by_scenario = {ep.scenario.id: ep.scenario for ep in episodes}
    with FakeServer(args.latency, tokenizer="smollm2") as server:
        batch = await clinsim_batch(
            server.base_url,
            episodes,
            args.concurrency,
            max_turns=args.max_turns,
            keep_results=True,
        )
        if batch.failed or len(batch.results) != len(episodes):
            raise RuntimeError(f"{batch.failed} of {len(episodes)} episodes failed")
        jobs = [
            (by_scenario[r.transcript.scenario_id], r.transcript) for r in batch.results.values()
        ]
        modes = {mode: await judge_all(server, mode, jobs) for mode in MODES}
    criteria = [len(scenario.rubric) for scenario, _ in jobs]
    turns = [len(transcript.turns) for _, transcript in jobs]
    pc, bt = modes["per-criterion"], modes["batched"]
    ratios = {
        f: {
            "of_means": pc["mean"][f] / bt["mean"][f],
            "median_per_episode": median(
                [a / b for a, b in zip(pc["per_episode"][f], bt["per_episode"][f], strict=True)]
            ),
        }
        for f in FIELDS
    }
    return {
        "latency_s": args.latency,
        "episodes": len(jobs),
        "max_turns": args.max_turns,
        "criteria_per_rubric_mean": statistics.fmean(criteria),
        "turns_per_transcript_mean": statistics.fmean(turns),
        "modes": modes,
        "ratio_per_criterion_to_batched": ratios,
    }


def report(out: dict[str, Any]) -> None:
    print(
        f"{out['episodes']} episodes, {out['turns_per_transcript_mean']:.1f} turns per "
        f"transcript, {out['criteria_per_rubric_mean']:.1f} criteria per rubric (mean)",
        flush=True,
    )
    pc, bt = out["modes"]["per-criterion"], out["modes"]["batched"]
    for f in FIELDS:
        r = out["ratio_per_criterion_to_batched"][f]
        label = f.replace("_", " ") + " per episode"
        print(
            f"{label:30s} per-criterion median {pc['median'][f]:8.0f}"
            f" mean {pc['mean'][f]:8.1f} | batched median {bt['median'][f]:7.0f} mean "
            f"{bt['mean'][f]:7.1f} | ratio {r['of_means']:5.2f}x (per episode median "
            f"{r['median_per_episode']:.2f}x)",
            flush=True,
        )
    for m in (pc, bt):
        agree = "agree" if m["server_agrees"] else f"DISAGREE: server {m['server_counted']}"
        print(
            f"{m['mode']}: judge usage {m['judge_sums']}, server counters {agree}; "
            f"{m['unscored']} criteria unscored",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--latency", type=float, default=0.01, help="seconds per server call")
    p.add_argument("--concurrency", type=int, default=8, help="episodes in flight in the batch")
    p.add_argument("--max-turns", type=int, default=8, help="clinician turns (scenario default)")
    p.add_argument("--smoke", action="store_true", help="2 episodes: the CI check")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.smoke:
        args.episodes = 2
    raise_fd_limit()
    print(f"machine: {machine()}", flush=True)
    out = asyncio.run(main_async(args))
    report(out)
    write_json(args.out, out)


if __name__ == "__main__":
    main()
