"""Shared fixtures: scripted backends, the embedded model, llama.cpp's OpenAI-compatible server
on 127.0.0.1, and SmolLM2 converted once into a transformers folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def cache_dir() -> Path:
    """Where slow-to-build test artefacts are kept between runs."""
    base = os.environ.get("CLINSIM_TEST_CACHE") or str(Path.home() / ".cache" / "clinsim-tests")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def script(tmp_path: Path) -> Callable[[str, list[Any]], str]:
    """Write a scripted-backend file and return its spec."""

    def make(name: str, items: list[Any]) -> str:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(items, allow_unicode=True), encoding="utf-8")
        return f"scripted:{path}"

    return make


def grader_reply(met: bool, turns: list[int] | None = None, why: str = "because") -> str:
    return json.dumps({"criteria_met": met, "explanation": why, "evidence_turns": turns or []})


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["aiohttp", "sdk"])
def http_transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test that takes it runs twice: through the openai: backend's own aiohttp transport,
    and through the OpenAI SDK (CLINSIM_HTTP=sdk)."""
    if request.param == "sdk":
        monkeypatch.setenv("CLINSIM_HTTP", "sdk")
    else:
        monkeypatch.delenv("CLINSIM_HTTP", raising=False)
    return str(request.param)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama.cpp's own OpenAI-compatible server (llama-cpp-python[server]) serving SmolLM2."""
    from simulator.llm._local import smollm2_path

    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(smollm2_path()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
            "--model_alias",
            "smollm2",
            "--n_threads",
            str(os.cpu_count() or 1),  # its default is half the cores
            "--cache",
            "true",  # keep the KV state of earlier prompts: roles alternate system prompts
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"llama.cpp server did not start: {log_path.read_text()[-2000:]}"
                )
            time.sleep(0.5)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def smollm2_hf_dir() -> Path:
    """SmolLM2 weights converted once from the shipped GGUF into a transformers folder."""
    from simulator.llm._hf import export_gguf_to_hf
    from simulator.llm._local import smollm2_path

    out = cache_dir() / "smollm2-135m-instruct-hf"
    if not (out / "config.json").exists():
        tmp = out.with_name(out.name + ".partial")
        export_gguf_to_hf(smollm2_path(), tmp)
        if out.exists():
            import shutil

            shutil.rmtree(out)
        tmp.rename(out)
    return out
