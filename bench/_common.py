"""What the benchmarks share: the measurement server in its own process, clinsim batches run
through the real batch runner and run store, and a bare AsyncOpenAI loop making exactly the
calls that clinsim made."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}"


def int_list(text: str) -> list[int]:
    """``--levels 16,64,256`` as a list."""
    return [int(x) for x in text.split(",")]


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def cpu_s() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


class FakeServer:
    """``bench/fakeserver.py`` in its own process."""

    def __init__(
        self,
        latency: float,
        *,
        tokens_per_s: float = 0.0,
        reply_tokens: int = 40,
        tokenizer: str | None = None,
    ) -> None:
        cmd = [
            sys.executable,
            str(BENCH / "fakeserver.py"),
            "--latency",
            str(latency),
            "--tokens-per-s",
            str(tokens_per_s),
            "--reply-tokens",
            str(reply_tokens),
        ]
        if tokenizer:
            cmd += ["--tokenizer", tokenizer]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            self.proc.kill()
            raise RuntimeError(f"measurement server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}/stats", timeout=10) as r:
            data: dict[str, Any] = json.load(r)
            return data

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------- clinsim batches


def bench_episodes(n: int, *, seed: int = 1) -> list[Any]:
    """``n`` planned episodes over the built-in scenarios, one persona, as many trials as it
    takes (what ``clinsim batch`` plans)."""
    from personas import PersonaLibrary
    from scenarios import ScenarioLibrary
    from simulator.batch import plan

    scenarios = sorted(ScenarioLibrary.load(), key=lambda s: s.id)
    persona = sorted(PersonaLibrary.load(), key=lambda p: p.id)[0]
    repeats = -(-n // len(scenarios))
    return plan(scenarios, [persona], ["openai:fake"], repeats=repeats, seed=seed)[:n]


@dataclass
class BatchRun:
    episodes: int
    wall_s: float
    cpu_s: float
    calls: int
    done: int
    failed: int
    results: dict[str, Any] = field(default_factory=dict, repr=False)  # planned key -> result

    @property
    def eps_per_s(self) -> float:
        return self.episodes / self.wall_s

    @property
    def calls_per_episode(self) -> float:
        return self.calls / self.episodes


MAX_TOKENS = 64  # per call, in every benchmark's model settings


class InstantBackend:
    """A model in the process that answers at once with the measurement server's text: what
    a batch costs with no HTTP client and no server, i.e. clinsim's own CPU alone."""

    spec = "openai:fake"

    def __init__(self) -> None:
        from bench.fakeserver import WORD
        from simulator.llm import Completion

        self._reply = Completion(
            text=" ".join([WORD] * 40), finish_reason="stop", prompt_tokens=100,
            completion_tokens=40, latency_s=0.0,
        )  # fmt: skip

    async def complete(self, messages: Any, **kw: Any) -> Any:
        await asyncio.sleep(0)  # yield to the loop, as a real call does
        return self._reply.model_copy()

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def model_config(base_url: str, *, timeout: float = 600.0) -> Any:
    from simulator.llm import ModelConfig

    return ModelConfig(
        spec="openai:fake", base_url=base_url, max_tokens=MAX_TOKENS, timeout=timeout
    )


async def clinsim_batch(
    base_url: str | None,
    episodes: Sequence[Any],
    concurrency: int,
    *,
    max_turns: int = 3,
    judge: Any = None,
    keep_results: bool = False,
    start_rate: float | None = -1.0,
) -> BatchRun:
    """Run ``episodes`` through clinsim's batch runner into a fresh run store (the path
    ``clinsim batch`` takes after its checks), timing only the run itself. ``base_url`` None:
    against ``InstantBackend`` rather than a server."""
    from simulator.batch import BatchSettings, run_batch
    from simulator.config import EpisodeLimits
    from simulator.llm import make_backend
    from simulator.schemas import EpisodeResult
    from simulator.session import Roles, Seat
    from simulator.store import RunStore

    cfg = model_config(base_url or "http://127.0.0.1:9/v1")
    settings = BatchSettings(concurrency=concurrency, limits=EpisodeLimits(max_turns=max_turns))
    if start_rate != -1.0:  # -1: clinsim's default
        settings.start_rate = start_rate
    clinician: Any
    patient: Any
    if base_url is None:
        clinician, patient = InstantBackend(), InstantBackend()
    else:
        clinician = make_backend(cfg, calls=concurrency)
        patient = make_backend(cfg, calls=concurrency)
    roles = Roles(clinicians=[Seat(cfg, clinician)], patient=Seat(cfg, patient), judge=judge)
    with tempfile.TemporaryDirectory() as tmp, RunStore(Path(tmp) / "runs.db") as store:
        store.open_run("bench", {"bench": True}, "bench", len(episodes), replace=False)
        c0, t0 = cpu_s(), time.perf_counter()
        progress = await run_batch(store, "bench", episodes, roles, settings)
        wall, cpu = time.perf_counter() - t0, cpu_s() - c0
        rows = store.episodes("bench", with_results=True)
    await clinician.aclose()
    await patient.aclose()
    calls = 0
    results = {}
    for row in rows:
        for role in ("clinician", "patient"):
            calls += int(row.usage.get(role, {}).get("calls", 0))
        if keep_results and row.result:
            results[row.key] = EpisodeResult.model_validate_json(row.result)
    return BatchRun(len(episodes), wall, cpu, calls, progress.done, progress.failed, results)


def calls_of(result: Any, episode: Any) -> list[tuple[list[Any], int, int]]:
    """The model calls an episode made, rebuilt from its transcript: (messages, seed,
    max_tokens) in order, exactly as clinsim sent them."""
    from simulator.patient import clinician_system_prompt, conversation_for, patient_system_prompt
    from simulator.record import role_seed

    systems = {
        "patient": patient_system_prompt(episode.scenario, episode.persona),
        "clinician": clinician_system_prompt(episode.scenario),
    }
    turns = result.transcript.turns
    out = []
    for k, t in enumerate(turns):
        if t.call is None:
            continue
        seed = role_seed(episode.seed, t.role) + k
        out.append((conversation_for(t.role, systems[t.role], turns[:k]), seed, MAX_TOKENS))
    return out


async def bare_loop(
    base_url: str,
    episodes: Sequence[list[tuple[list[Any], int, int]]],
    concurrency: int,
    *,
    client: str = "openai",
) -> BatchRun:
    """The same calls without clinsim: each episode's calls one after another, ``concurrency``
    episodes at a time, two clients (one per role, as clinsim has). No state machine, no
    records, no store: the HTTP client's and the server's cost only.

    ``client``: ``openai``, the SDK as most code uses it (``AsyncOpenAI``,
    ``chat.completions.create``, its default transport); ``sdk-aiohttp``, the SDK with its
    aiohttp transport and the JSON body posted as it is (clinsim's path before it sent
    requests itself); ``lean``, clinsim's own client path (its aiohttp transport, the reply
    parsed with ``json``), so that clinsim's CPU less this loop's is the harness alone."""
    from openai import AsyncOpenAI, DefaultAioHttpClient

    from simulator.llm._openai import _AiohttpTransport

    limit = asyncio.Semaphore(concurrency)
    done = 0
    lean = [_AiohttpTransport(base_url, "x", 600.0) for _ in range(2 if client == "lean" else 0)]
    sdks = [
        AsyncOpenAI(
            base_url=base_url,
            api_key="x",
            max_retries=0,
            timeout=600.0,
            http_client=DefaultAioHttpClient() if client == "sdk-aiohttp" else None,
        )
        for _ in range(2 if client != "lean" else 0)
    ]

    async def call(n: int, messages: list[Any], seed: int, max_tokens: int) -> str:
        args: dict[str, Any] = {"model": "fake", "messages": messages, "temperature": 0.7,
                "max_tokens": max_tokens, "seed": seed}  # fmt: skip
        if client == "lean":
            reply = json.loads(await lean[n % 2].send("POST", "/chat/completions", args))
        elif client == "sdk-aiohttp":
            reply = json.loads(await sdks[n % 2].post("/chat/completions", body=args, cast_to=str))
        else:
            resp = await sdks[n % 2].chat.completions.create(**args)
            return resp.choices[0].message.content or ""
        return str(reply["choices"][0]["message"]["content"])

    async def one(calls: list[tuple[list[Any], int, int]]) -> None:
        nonlocal done
        async with limit:
            for n, (messages, seed, max_tokens) in enumerate(calls):
                assert await call(n, messages, seed, max_tokens)
            done += 1

    c0, t0 = cpu_s(), time.perf_counter()
    await asyncio.gather(*(one(e) for e in episodes))
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    for t in lean:
        await t.aclose()
    for c in sdks:
        await c.close()
    return BatchRun(len(episodes), wall, cpu, sum(len(e) for e in episodes), done, 0)


def write_json(path: Path | None, data: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
