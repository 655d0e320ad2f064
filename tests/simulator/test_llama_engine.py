"""The embedded model's engine on the real SmolLM2: continuous batching, prompt reuse, and
answers that do not depend on what else is in flight, checked against llama-cpp-python's own
``create_chat_completion`` as the reference."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from judges import GraderReply
from simulator.llm import BackendError, ModelConfig, _local, make_backend, schema_of
from simulator.llm._llama_engine import LlamaEngine
from simulator.llm._local import grammar_safe_schema, smollm2_path
from tests.simulator.test_cli import clinsim

pytestmark = pytest.mark.model
THREADS = os.cpu_count() or 1
SYSTEM = (
    "You are a triage nurse on a telephone advice line run by a community hospital. Callers "
    "describe symptoms; you ask one short question at a time about onset, severity, location, "
    "what makes it better or worse, medicines taken and other conditions. Advise emergency "
    "services at once for chest pain with sweating or breathlessness, signs of stroke, severe "
    "bleeding or trouble breathing. Otherwise say whether to see a doctor today, book a visit "
    "or care for themselves at home, and what should make them call back. Use plain words."
)
GRADER = grammar_safe_schema(schema_of(GraderReply).schema)


def chat(user: str, *more: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
    for i, text in enumerate(more):
        messages.append({"role": "assistant" if i % 2 == 0 else "user", "content": text})
    return messages


CALLS: list[dict[str, Any]] = [
    {"messages": chat("I have had chest pain since lunch."), "temperature": 0.7, "seed": 3},
    {
        "messages": [
            {"role": "system", "content": "You are a worried parent calling a nurse line."},
            {"role": "user", "content": "Hello, this is the nurse line. How can I help?"},
        ],
        "temperature": 0.7,
        "seed": 4,
    },
    {
        "messages": chat(
            "I have had chest pain since lunch.",
            "Does the pain spread to your arm or jaw?",
            "Yes, to my left arm, and I am sweating.",
        ),
        "temperature": 0.7,
        "seed": 5,
    },
    {
        "messages": [
            {
                "role": "user",
                "content": "Transcript: [1] patient: crushing chest pain [2] assistant: call "
                "emergency services now. Did the assistant advise emergency care? Answer as JSON "
                "with criteria_met, explanation, evidence_turns.",
            }
        ],
        "temperature": 0.0,
        "seed": 1,
        "schema": GRADER,
    },
]


def engine(slots: int, *, cache_mb: int = 64, n_ctx: int = 2048) -> LlamaEngine:
    return LlamaEngine(
        smollm2_path(), slots=slots, n_ctx=n_ctx, n_threads=THREADS, cache_bytes=cache_mb << 20
    )


def submit(e: LlamaEngine, call: dict[str, Any], max_tokens: int = 48) -> Future[Any]:
    return e.submit(
        call["messages"],
        temperature=call["temperature"],
        max_tokens=max_tokens,
        seed=call["seed"],
        schema=call.get("schema"),
    )


@pytest.fixture(scope="module")
def alone() -> list[tuple[str, str, int, int]]:
    """Each call on a fresh engine of one slot with nothing cached: the reference answers."""
    out = []
    for call in CALLS:
        e = engine(1, cache_mb=0)
        try:
            out.append(submit(e, call).result(timeout=300))
        finally:
            e.close()
    return out


def test_answers_equal_llama_cpp_pythons_own(alone: list[Any]) -> None:
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(smollm2_path()),
        n_ctx=2048,
        n_threads=THREADS,
        flash_attn=False,
        verbose=False,
    )
    try:
        for call, mine in zip(CALLS, alone, strict=True):
            kwargs: dict[str, Any] = {}
            if "schema" in call:
                kwargs["response_format"] = {"type": "json_object", "schema": call["schema"]}
            ref = llm.create_chat_completion(
                messages=call["messages"],
                temperature=call["temperature"],
                max_tokens=48,
                seed=call["seed"],
                **kwargs,
            )
            choice = ref["choices"][0]
            assert mine[0] == choice["message"]["content"]
            assert mine[1] == choice["finish_reason"]
            assert mine[2:] == (
                ref["usage"]["prompt_tokens"],
                ref["usage"]["completion_tokens"],
            )
    finally:
        llm.close()
    assert json.loads(alone[3][0])["criteria_met"] is True


def test_batched_concurrent_answers_equal_answers_alone(alone: list[Any]) -> None:
    e = engine(len(CALLS))
    try:
        futures = [submit(e, call) for call in CALLS]
        together = [f.result(timeout=300) for f in futures]
        assert together == alone
        # the calls were decoded together, not one after another
        assert e.stats.decoded_sequences >= 2 * e.stats.decode_steps
        # the third call's conversation starts with the first's: it waited for that prefix to
        # be evaluated and copied it instead of evaluating it again
        assert e.stats.copies >= 1
        assert e.stats.prompt_tokens_evaluated < e.stats.prompt_tokens
    finally:
        e.close()


def test_a_conversation_continued_reuses_its_slot_or_its_saved_state(alone: list[Any]) -> None:
    first, other, continued = CALLS[0], CALLS[1], CALLS[2]
    e = engine(1)  # one slot: the other conversation (another system prompt) takes it between
    try:
        reply = submit(e, first).result(timeout=300)[0]
        submit(e, other).result(timeout=300)
        assert e.stats.saves >= 1
        turns = [{"role": "assistant", "content": reply}, {"role": "user", "content": "Yes."}]
        follow = {**continued, "messages": [*first["messages"], *turns]}
        before = e.stats.prompt_tokens_evaluated
        out = submit(e, follow).result(timeout=300)
        assert e.stats.restores == 1
        assert e.stats.prompt_tokens_evaluated - before < out[2] / 2
        # and the answer is the one a fresh engine gives
        fresh = engine(1, cache_mb=0)
        try:
            assert submit(fresh, follow).result(timeout=300) == out
        finally:
            fresh.close()
        # the same call again on the same slot: only its last two tokens are evaluated
        before = e.stats.prompt_tokens_evaluated
        assert submit(e, follow).result(timeout=300) == out
        assert e.stats.prompt_tokens_evaluated - before == 2
    finally:
        e.close()


def test_bad_calls_fail_alone_and_a_cancelled_call_frees_its_slot() -> None:
    e = engine(1, n_ctx=256)
    try:
        long = {"messages": chat("word " * 400), "temperature": 0.7, "seed": 1}
        with pytest.raises(BackendError, match=r"the prompt has \d+ tokens; the context window"):
            submit(e, long).result(timeout=60)
        loose = {**CALLS[3], "schema": {"type": "object", "properties":
                 {"x": {"type": "string", "maxLength": 4000}}}}  # fmt: skip
        with pytest.raises(BackendError) as bad:
            submit(e, loose).result(timeout=60)
        assert bad.value.kind == "bad_request"
        slow = submit(e, CALLS[0], max_tokens=200)
        time.sleep(0.3)
        assert slow.cancel()
        text, finish, _, n = submit(e, CALLS[1], max_tokens=4).result(timeout=60)
        assert finish == "length" and n == 4 and text
    finally:
        e.close()


def test_batch_runs_give_the_same_transcripts_at_any_concurrency(tmp_path: Path) -> None:
    def transcripts(concurrency: int) -> dict[str, list[tuple[str, str]]]:
        home = tmp_path / f"c{concurrency}"
        args = ["--clinician", "local:smollm2", "--patient", "local:smollm2", "--no-judge",
                "--scenario", "triage-indigestion-chest-pain", "--persona", "calm-adult",
                "--repeats", "2", "--max-turns", "2", "--min-turns", "2", "--run", "r",
                "--quiet"]  # fmt: skip
        env = {"CLINSIM_HOME": str(home)}
        proc = clinsim("batch", *args, "--concurrency", str(concurrency), env=env, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = clinsim("report", "r", "--format", "jsonl", env=env)
        assert report.returncode == 0, report.stderr
        out = {}
        for line in report.stdout.splitlines():
            row = json.loads(line)
            turns = row["result"]["transcript"]["turns"]
            out[row["key"]] = [(t["role"], t["content"]) for t in turns]
        return out

    one, two = transcripts(1), transcripts(2)
    assert len(one) == 2 and all(len(t) >= 4 for t in one.values())
    assert one == two


def test_slots_follow_the_calls_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    path = smollm2_path()
    monkeypatch.setattr(_local, "_slots_wanted", {})
    monkeypatch.delenv("CLINSIM_LOCAL_SLOTS", raising=False)
    make_backend(ModelConfig(spec="local:smollm2"))
    assert _local._slots(path) == 1
    make_backend(ModelConfig(spec="local:smollm2"), calls=6)
    assert _local._slots(path) == 6
    make_backend(ModelConfig(spec="local:smollm2"), calls=64)
    assert _local._slots(path) == _local.MAX_SLOTS
    monkeypatch.setenv("CLINSIM_LOCAL_SLOTS", "3")
    assert _local._slots(path) == 3
    monkeypatch.setenv("CLINSIM_LOCAL_SLOTS", "many")
    with pytest.raises(BackendError, match="CLINSIM_LOCAL_SLOTS='many'"):
        _local._slots(path)


def test_a_saved_state_evicted_by_the_slots_own_save_is_still_restored() -> None:
    """One slot, a state cache that holds one conversation's state but not two. Conversation
    B's state is saved when A takes the slot; B's next call then restores it while A's state
    is saved, which evicts B's entry. Earlier, the restore looked B up after that save: a
    KeyError that failed the call ("llama.cpp failed: KeyError") and lost the calls the
    admission had in hand."""
    e = engine(1)
    try:
        b = {"messages": chat("I have had chest pain since lunch."), "temperature": 0.0, "seed": 1}
        a = {**CALLS[1], "temperature": 0.0}
        first_b = submit(e, b, max_tokens=8).result(timeout=300)
        submit(e, a, max_tokens=8).result(timeout=300)
        size_b = e._cache.size  # B's state, saved when A took the slot
        size_a = e._lc.llama_state_seq_get_size(e._ctx, 0)  # A's, still in the slot
        assert size_b > 0 and size_a > 0
        e._cache.capacity = max(size_a, size_b) + min(size_a, size_b) // 2  # one, not both
        restores = e.stats.restores
        reply = {"role": "assistant", "content": first_b[0]}
        follow = {"role": "user", "content": "It spreads to my left arm."}
        more = {**b, "messages": [*b["messages"], reply, follow]}
        text, _, _, _ = submit(e, more, max_tokens=8).result(timeout=300)
        assert text and e.stats.restores == restores + 1
    finally:
        e.close()


def test_stress_every_call_ends_with_evictions_cancellations_and_shared_prefixes() -> None:
    """Many concurrent calls of mixed lengths, most sharing a system prompt, on two slots and
    a state cache too small for more than a few states (so that saves evict), some cancelled
    at once and some mid-way: every call ends, with an answer or its cancellation, and none
    fails with an engine error."""
    e = engine(2, cache_mb=4)
    try:
        futures = []
        for i in range(24):
            user = ("I have had chest pain since lunch. " * (1 + i % 4)) + f"Call {i}."
            more = ["Where exactly is the pain?", "In the middle of my chest."] if i % 3 else []
            call = {"messages": chat(user, *more), "temperature": 0.7 if i % 2 else 0.0,
                    "seed": i}  # fmt: skip
            if i % 5 == 4:
                call = {**CALLS[1], "seed": i}
            futures.append(submit(e, call, max_tokens=4 + (i % 3) * 6))
            if i % 7 == 3:
                futures[-1].cancel()  # at once, before it runs
        time.sleep(0.5)
        futures[10].cancel()  # mid-way, or already done: either is an end
        for f in futures:
            if f.cancelled():
                continue
            _, finish, _, n = f.result(timeout=600)
            assert finish in ("stop", "length") and n >= 1
        assert e.stats.saves > 0  # the small cache was used, and evicted from
    finally:
        e.close()
