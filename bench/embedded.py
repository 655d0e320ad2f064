"""The embedded model (local:smollm2, llama.cpp in-process) on this machine's cores.

1. ``clinsim demo`` as a user runs it: wall time of the whole command (model load, an episode
   of up to 3 clinician turns, per-criterion grading with a JSON grammar).
2. The same prompts three ways, each in a fresh process: the demo's model calls are recorded
   once, then replayed (a) through clinsim's local backend, (b) through llama-cpp-python
   directly as a user would set it up (``Llama(model_path, n_ctx, n_threads)``, no cache), and
   (c) directly with clinsim's settings (flash attention, state cache). Tokens per second =
   (prompt + completion tokens) / seconds; (a)/(c) is what clinsim's own layers cost, (a)/(b)
   what a user gets from clinsim against raw llama.cpp.
3. Several episodes at once on the one shared model (``clinsim batch --concurrency K``): wall
   time with the state cache off (``CLINSIM_LOCAL_CACHE_MB=0``: every call evaluates its
   whole conversation again) and on (the default).

    python bench/embedded.py                 # 3 runs of each, about 15 minutes on 2 cores
    python bench/embedded.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, machine, median, write_json


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run(args, capture_output=True, text=True, env=full, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}... failed:\n{proc.stderr[-3000:]}")
    return proc


def _worker(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = _run([sys.executable, str(Path(__file__).resolve()), "--worker", *args], env)
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


# ---------------------------------------------------------------------- workers (own process)


async def record(path: Path, max_turns: int) -> dict[str, Any]:
    """Run the demo's episode with every model call recorded."""
    from judges import RubricJudge
    from personas import PersonaLibrary
    from scenarios import ScenarioLibrary
    from simulator.cli import DEMO_PERSONA, DEMO_SCENARIO
    from simulator.episode import EpisodeRunner
    from simulator.graph import EpisodeContext
    from simulator.llm import ModelConfig, make_backend

    calls: list[dict[str, Any]] = []
    inner = make_backend(ModelConfig(spec="local:smollm2"))

    class Recorder:
        spec = inner.spec

        async def complete(self, messages: Any, **kw: Any) -> Any:
            out = await inner.complete(messages, **kw)
            fmt = kw.get("response_format")
            calls.append(
                {
                    "messages": list(messages),
                    "temperature": kw.get("temperature"),
                    "max_tokens": kw.get("max_tokens"),
                    "seed": kw.get("seed"),
                    "schema": fmt.schema if fmt is not None else None,
                    "tokens": out.prompt_tokens + out.completion_tokens,
                }
            )
            return out

        async def check(self) -> None:
            await inner.check()

        async def aclose(self) -> None:
            await inner.aclose()

    backend: Any = Recorder()
    await backend.check()
    cfg = ModelConfig(spec="local:smollm2")
    ctx = EpisodeContext(
        scenario=ScenarioLibrary.load().get(DEMO_SCENARIO),
        persona=PersonaLibrary.load().get(DEMO_PERSONA),
        clinician=backend,
        patient=backend,
        clinician_cfg=cfg,
        patient_cfg=cfg,
        judge=RubricJudge(backend, cfg, seed=0),
        seed=0,
        max_turns=max_turns,
        min_turns=2,
    )
    t0 = time.perf_counter()
    await EpisodeRunner().start(ctx)
    wall = time.perf_counter() - t0
    path.write_text(json.dumps(calls))
    return {"calls": len(calls), "episode_s": wall}


def replay(path: Path, how: str) -> dict[str, Any]:
    """Replay recorded calls: through clinsim's backend, or llama-cpp-python directly."""
    calls = json.loads(path.read_text())
    tokens = sum(c["tokens"] for c in calls)
    if how == "clinsim":
        from simulator.llm import JsonSchema, ModelConfig, make_backend

        backend = make_backend(ModelConfig(spec="local:smollm2"))

        async def go() -> float:
            await backend.check()  # load the model before the clock starts, as raw does
            t0 = time.perf_counter()
            for c in calls:
                fmt = JsonSchema(name="Reply", schema=c["schema"]) if c["schema"] else None
                await backend.complete(
                    c["messages"],
                    temperature=c["temperature"],
                    max_tokens=c["max_tokens"],
                    seed=c["seed"],
                    response_format=fmt,
                )
            return time.perf_counter() - t0

        seconds = asyncio.run(go())
    else:
        from llama_cpp import Llama, LlamaRAMCache

        from simulator.llm._local import DEFAULT_CACHE_MB, N_CTX, grammar_safe_schema, smollm2_path

        same = how == "raw-same-settings"
        settings: dict[str, Any] = {"flash_attn": True} if same else {}
        llm = Llama(
            model_path=str(smollm2_path()),
            n_ctx=N_CTX,
            n_threads=os.cpu_count() or 1,
            verbose=False,
            **settings,
        )
        if same:
            llm.set_cache(LlamaRAMCache(capacity_bytes=DEFAULT_CACHE_MB << 20))
        t0 = time.perf_counter()
        for c in calls:
            kw: dict[str, Any] = {}
            if c["schema"]:
                kw["response_format"] = {
                    "type": "json_object",
                    "schema": grammar_safe_schema(c["schema"]),
                }
            llm.create_chat_completion(
                messages=c["messages"],
                temperature=c["temperature"],
                max_tokens=c["max_tokens"],
                seed=c["seed"],
                **kw,
            )
        seconds = time.perf_counter() - t0
    return {"how": how, "seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds}


# ---------------------------------------------------------------------- driver


def demo_wall(runs: int, max_turns: int) -> list[float]:
    out = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as home:
            t0 = time.perf_counter()
            _run(
                [sys.executable, "-m", "simulator.cli", "demo", "--max-turns", str(max_turns)],
                {"CLINSIM_HOME": home},
            )
            out.append(time.perf_counter() - t0)
    return out


def concurrent(k: int, max_turns: int, cache_mb: int) -> float:
    """Wall time of ``clinsim batch`` with K episodes in flight on the embedded model."""
    with tempfile.TemporaryDirectory() as home:
        from simulator.cli import DEMO_PERSONA, DEMO_SCENARIO

        cmd = [sys.executable, "-m", "simulator.cli", "batch", "--clinician", "local:smollm2",
               "--patient", "local:smollm2", "--no-judge", "--scenario", DEMO_SCENARIO,
               "--persona", DEMO_PERSONA, "--repeats", str(k), "--concurrency", str(k),
               "--max-turns", str(max_turns), "--min-turns", "1", "--run", "bench",
               "--quiet"]  # fmt: skip
        t0 = time.perf_counter()
        _run(cmd, {"CLINSIM_HOME": home, "CLINSIM_LOCAL_CACHE_MB": str(cache_mb)})
        return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--max-turns", type=int, default=3)
    p.add_argument("--episodes", type=int, default=4, help="episodes in flight for part 3")
    p.add_argument("--smoke", action="store_true", help="one short run of each: the CI check")
    p.add_argument("--out", type=Path)
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "record":
            result = asyncio.run(record(Path(rest[0]), int(rest[1])))
        else:
            result = replay(Path(rest[0]), rest[1])
        print(json.dumps(result))
        return
    if args.smoke:
        args.runs, args.max_turns, args.episodes = 1, 1, 2
    print(f"machine: {machine()}", flush=True)
    out: dict[str, Any] = {"max_turns": args.max_turns}

    demo = demo_wall(args.runs, args.max_turns)
    out["demo_wall_s"] = {"median": median(demo), "runs": demo}
    print(
        f"clinsim demo --max-turns {args.max_turns}: {median(demo):.1f} s (median of "
        f"{len(demo)}: {', '.join(f'{x:.1f}' for x in demo)})",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as tmp:
        calls = Path(tmp) / "calls.json"
        rec = _worker("record", str(calls), str(args.max_turns))
        out["recorded"] = rec
        print(f"recorded {rec['calls']} calls of one demo episode ({rec['episode_s']:.1f} s)")
        hows = ("clinsim", "raw", "raw-same-settings")
        runs: dict[str, list[float]] = {h: [] for h in hows}
        for _ in range(args.runs):
            for how in hows:  # interleaved, so drift falls on all three
                runs[how].append(_worker("replay", str(calls), how)["tokens_per_s"])
        tps = {h: median(v) for h, v in runs.items()}
        out["tokens_per_s"] = {h: {"median": tps[h], "runs": runs[h]} for h in hows}
        out["clinsim_vs_raw"] = tps["clinsim"] / tps["raw"]
        out["clinsim_vs_raw_same_settings"] = tps["clinsim"] / tps["raw-same-settings"]
        print(
            f"same prompts, tokens/s: clinsim {tps['clinsim']:.0f}, raw llama.cpp "
            f"{tps['raw']:.0f} ({out['clinsim_vs_raw']:.2f}x), raw with clinsim's settings "
            f"{tps['raw-same-settings']:.0f} ({out['clinsim_vs_raw_same_settings']:.2f}x)",
            flush=True,
        )

    before = [concurrent(args.episodes, args.max_turns, 0) for _ in range(args.runs)]
    from simulator.llm._local import DEFAULT_CACHE_MB

    after = [concurrent(args.episodes, args.max_turns, DEFAULT_CACHE_MB) for _ in range(args.runs)]
    out["concurrent"] = {
        "episodes": args.episodes,
        "no_cache_s": before,
        "cache_s": after,
        "speedup": median(before) / median(after),
    }
    print(
        f"{args.episodes} episodes at once on one model: {median(before):.1f} s without the "
        f"state cache, {median(after):.1f} s with it ({median(before) / median(after):.2f}x)",
        flush=True,
    )
    write_json(args.out, out)


if __name__ == "__main__":
    main()
