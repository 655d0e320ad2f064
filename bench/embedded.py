"""The embedded model (local:smollm2, llama.cpp in-process) on this machine's cores.

1. ``clinsim demo`` as a user runs it: wall time and peak memory of the whole command (model
   load, an episode of up to 3 clinician turns, per-criterion grading with a JSON grammar).
2. The same prompts three ways, each in a fresh process: the demo's model calls are recorded
   once, then replayed (a) through clinsim's local backend, (b) through llama-cpp-python
   directly as a user would set it up (``Llama(model_path, n_ctx, n_threads)``), and (c)
   directly with clinsim's model settings (flash attention off, a state cache). Tokens per
   second = (prompt + completion tokens each replay reports) / seconds.
3. What llama.cpp's batched decoding gives on these cores: K calls at once on one engine of K
   slots, completion tokens per second, K = 1, 2, 4, 8.
4. Several episodes at once on the one shared model (``clinsim batch --concurrency K``): wall
   time and peak memory with one slot (calls served one at a time, conversations swapped
   through the state cache: no batching) and with K slots (the default: batched). The two give
   the same transcripts, which is checked.

``--before PATH`` also runs parts 1 and 4 on another checkout (e.g. the commit before the
engine: ``git worktree add ../before fd010f4``), interleaved with this one.

    python bench/embedded.py                 # 3 runs of each, about 30 minutes on 2 cores
    python bench/embedded.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
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


def _run(
    args: list[str], env: dict[str, str] | None = None, *, tree: Path = ROOT
) -> tuple[str, float, float]:
    """Run a command with ``tree`` first on the path: its stdout, wall seconds, and the peak
    resident memory of that process in MB (from wait4, so it is this child's alone)."""
    full = {**os.environ, "PYTHONPATH": str(tree), **(env or {})}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, text=True, env=full, cwd=tree)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:4])}... failed:\n{err.read()[-3000:]}")
        return out.read(), wall, usage.ru_maxrss / 1024  # KB on Linux


def _worker(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out, _, _ = _run([sys.executable, str(Path(__file__).resolve()), "--worker", *args], env)
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return data


# ---------------------------------------------------------------------- workers (own process)


async def record(path: Path, max_turns: int) -> dict[str, Any]:
    """Run the demo's episode with every model call recorded."""
    from judges import RubricJudge
    from personas import PersonaLibrary
    from scenarios import ScenarioLibrary
    from simulator.commands.run import DEMO_PERSONA, DEMO_SCENARIO
    from simulator.config import EpisodeLimits
    from simulator.episode import EpisodeRunner
    from simulator.llm import ModelConfig, make_backend
    from simulator.session import episode_context

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
    ctx = episode_context(
        ScenarioLibrary.load().get(DEMO_SCENARIO),
        PersonaLibrary.load().get(DEMO_PERSONA),
        clinician=(backend, cfg),
        patient=(backend, cfg),
        judge=RubricJudge(backend, cfg, seed=0),
        seed=0,
        limits=EpisodeLimits(max_turns=max_turns, min_turns=2),
    )
    t0 = time.perf_counter()
    await EpisodeRunner().start(ctx)
    wall = time.perf_counter() - t0
    path.write_text(json.dumps(calls))
    return {"calls": len(calls), "episode_s": wall}


def replay(path: Path, how: str) -> dict[str, Any]:
    """Replay recorded calls: through clinsim's backend, or llama-cpp-python directly."""
    calls = json.loads(path.read_text())
    tokens = 0
    if how == "clinsim":
        from simulator.llm import JsonSchema, ModelConfig, make_backend

        backend = make_backend(ModelConfig(spec="local:smollm2"))

        async def go() -> float:
            nonlocal tokens
            await backend.check()  # load the model before the clock starts, as raw does
            t0 = time.perf_counter()
            for c in calls:
                fmt = JsonSchema(name="Reply", schema=c["schema"]) if c["schema"] else None
                out = await backend.complete(
                    c["messages"],
                    temperature=c["temperature"],
                    max_tokens=c["max_tokens"],
                    seed=c["seed"],
                    response_format=fmt,
                )
                tokens += out.prompt_tokens + out.completion_tokens
            return time.perf_counter() - t0

        seconds = asyncio.run(go())
    else:
        from llama_cpp import Llama, LlamaRAMCache

        from simulator.llm._local import DEFAULT_CACHE_MB, N_CTX, grammar_safe_schema, smollm2_path

        same = how == "raw-same-settings"
        llm = Llama(
            model_path=str(smollm2_path()),
            n_ctx=N_CTX,
            n_threads=os.cpu_count() or 1,
            verbose=False,
            flash_attn=False,  # llama-cpp-python's default, and clinsim's setting
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
            out: Any = llm.create_chat_completion(
                messages=c["messages"],
                temperature=c["temperature"],
                max_tokens=c["max_tokens"],
                seed=c["seed"],
                **kw,
            )
            usage = out["usage"]
            tokens += usage["prompt_tokens"] + usage["completion_tokens"]
        seconds = time.perf_counter() - t0
    return {"how": how, "seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds}


def batched(k: int, max_tokens: int) -> dict[str, Any]:
    """K calls at once on an engine of K slots: completion tokens per second."""
    from simulator.llm._llama_engine import LlamaEngine
    from simulator.llm._local import smollm2_path

    engine = LlamaEngine(
        smollm2_path(), slots=k, n_ctx=1024, n_threads=os.cpu_count() or 1, cache_bytes=0
    )
    questions = ["chest pain", "a rash", "a cough", "dizziness", "back pain", "a fever",
                 "a headache", "ankle swelling"]  # fmt: skip
    try:
        t0 = time.perf_counter()
        futures = [
            engine.submit(
                [{"role": "user", "content": f"I have {questions[i % 8]}. What should I do?"}],
                temperature=0.7,
                max_tokens=max_tokens,
                seed=i,
                schema=None,
            )
            for i in range(k)
        ]
        done = [f.result() for f in futures]
        seconds = time.perf_counter() - t0
        stats = engine.stats
    finally:
        engine.close()
    completion = sum(d[3] for d in done)
    return {
        "k": k,
        "seconds": seconds,
        "completion_tokens": completion,
        "tokens_per_s": completion / seconds,
        "mean_batch": stats.decoded_sequences / max(1, stats.decode_steps),
    }


# ---------------------------------------------------------------------- driver


def demo(max_turns: int, tree: Path) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as home:
        cmd = [sys.executable, "-m", "simulator.cli", "demo", "--max-turns", str(max_turns)]
        _, wall, peak = _run(cmd, {"CLINSIM_HOME": home}, tree=tree)
    return wall, peak


def concurrent(k: int, max_turns: int, slots: int | None, tree: Path) -> dict[str, Any]:
    """``clinsim batch`` with K episodes in flight on the embedded model: wall time, peak
    memory, and a hash of the transcripts."""
    from simulator.commands.run import DEMO_PERSONA, DEMO_SCENARIO

    with tempfile.TemporaryDirectory() as home:
        env = {"CLINSIM_HOME": home}
        if slots is not None:
            env["CLINSIM_LOCAL_SLOTS"] = str(slots)
        cmd = [sys.executable, "-m", "simulator.cli", "batch", "--clinician", "local:smollm2",
               "--patient", "local:smollm2", "--no-judge", "--scenario", DEMO_SCENARIO,
               "--persona", DEMO_PERSONA, "--repeats", str(k), "--concurrency", str(k),
               "--max-turns", str(max_turns), "--min-turns", "1", "--run", "bench",
               "--quiet"]  # fmt: skip
        _, wall, peak = _run(cmd, env, tree=tree)
        report = [sys.executable, "-m", "simulator.cli", "report", "bench", "--format", "jsonl"]
        out, _, _ = _run(report, env, tree=tree)
    turns = []
    for line in out.splitlines():
        row = json.loads(line)
        turns.append([row["key"], [t["content"] for t in row["result"]["transcript"]["turns"]]])
    digest = hashlib.sha256(json.dumps(sorted(turns)).encode()).hexdigest()[:16]
    return {"wall_s": wall, "peak_mb": peak, "transcripts": digest}


def _line(label: str, xs: list[float], unit: str = "s") -> str:
    return (
        f"{label}: {median(xs):.1f} {unit} (median of {len(xs)}: "
        + ", ".join(f"{x:.1f}" for x in xs)
        + ")"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--max-turns", type=int, default=3)
    p.add_argument("--episodes", type=int, default=4, help="episodes in flight for part 4")
    p.add_argument("--before", type=Path, help="another checkout to measure alongside")
    p.add_argument("--smoke", action="store_true", help="one short run of each: the CI check")
    p.add_argument("--out", type=Path)
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "record":
            result = asyncio.run(record(Path(rest[0]), int(rest[1])))
        elif kind == "batched":
            result = batched(int(rest[0]), int(rest[1]))
        else:
            result = replay(Path(rest[0]), rest[1])
        print(json.dumps(result))
        return
    levels, decode_tokens = [1, 2, 4, 8], 128
    if args.smoke:
        args.runs, args.max_turns, args.episodes = 1, 1, 2
        levels, decode_tokens = [1, 2], 16
    print(f"machine: {machine()}", flush=True)
    trees = {"now": ROOT, **({"before": args.before.resolve()} if args.before else {})}
    out: dict[str, Any] = {"max_turns": args.max_turns}

    # 1. the demo
    walls: dict[str, list[float]] = {t: [] for t in trees}
    peaks: dict[str, list[float]] = {t: [] for t in trees}
    for _ in range(args.runs):
        for name, tree in trees.items():  # interleaved, so drift falls on all
            wall, peak = demo(args.max_turns, tree)
            walls[name].append(wall)
            peaks[name].append(peak)
    out["demo"] = {t: {"wall_s": walls[t], "peak_mb": peaks[t]} for t in trees}
    out["demo_wall_s"] = {"median": median(walls["now"]), "runs": walls["now"]}
    for t in trees:
        print(_line(f"clinsim demo ({t})", walls[t]) + f", peak {median(peaks[t]):.0f} MB",
              flush=True)  # fmt: skip

    # 2. the same prompts through clinsim and through llama-cpp-python
    with tempfile.TemporaryDirectory() as tmp:
        calls = Path(tmp) / "calls.json"
        rec = _worker("record", str(calls), str(args.max_turns))
        out["recorded"] = rec
        print(f"recorded {rec['calls']} calls of one demo episode ({rec['episode_s']:.1f} s)")
        hows = ("clinsim", "raw", "raw-same-settings")
        runs: dict[str, list[float]] = {h: [] for h in hows}
        for _ in range(args.runs):
            for how in hows:
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

    # 3. batched decoding on its own
    rows: dict[int, list[dict[str, Any]]] = {k: [] for k in levels}
    for _ in range(args.runs):
        for k in levels:
            rows[k].append(_worker("batched", str(k), str(decode_tokens)))
    out["batched_decode"] = []
    for k in levels:
        rate = median([r["tokens_per_s"] for r in rows[k]])
        base = median([r["tokens_per_s"] for r in rows[levels[0]]])
        out["batched_decode"].append(
            {"k": k, "tokens_per_s": rate, "vs_one": rate / base, "runs": rows[k]}
        )
        print(f"{k} calls at once: {rate:.0f} completion tokens/s ({rate / base:.2f}x one)",
              flush=True)  # fmt: skip

    # 4. several episodes at once: one slot against K slots (and the other checkout)
    variants = {"one slot": (ROOT, 1), "batched": (ROOT, None)}
    if args.before:
        variants["before"] = (args.before.resolve(), None)
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for _ in range(args.runs):
        for name, (tree, slots) in variants.items():
            results[name].append(concurrent(args.episodes, args.max_turns, slots, tree))
    walls_c = {v: [r["wall_s"] for r in rs] for v, rs in results.items()}
    same = len({r["transcripts"] for v in ("one slot", "batched") for r in results[v]}) == 1
    out["concurrent"] = {
        "episodes": args.episodes,
        "runs": results,
        "speedup": median(walls_c["one slot"]) / median(walls_c["batched"]),
        "same_transcripts": same,
    }
    for v in variants:
        peak = median([r["peak_mb"] for r in results[v]])
        print(_line(f"{args.episodes} episodes at once, {v}", walls_c[v]) + f", peak {peak:.0f} MB",
              flush=True)  # fmt: skip
    print(f"batched against one slot: {out['concurrent']['speedup']:.2f}x; the same "
          f"transcripts: {'yes' if same else 'NO'}", flush=True)  # fmt: skip
    write_json(args.out, out)


if __name__ == "__main__":
    main()
