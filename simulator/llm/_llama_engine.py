"""Continuous batching of chat calls on one in-process GGUF model (llama.cpp's C API).

One llama.cpp context holds ``slots`` sequences, each with a KV stream of its own. A call takes
a free slot, evaluates the part of its prompt that the slot does not hold yet (in chunks), then
generates; every step decodes the next token of every generating slot in one batch, so several
conversations share each pass over the weights. Between steps, waiting prompts are fed.

Prompt reuse, in order of preference:
- the slot's own tokens (the same conversation's previous call left its prompt in the slot);
- another slot's tokens, copied inside llama.cpp (a shared system prompt, one transcript graded
  against several criteria); a call waits for a slot that is still evaluating a prefix it
  shares rather than evaluate that prefix a second time;
- a state saved in memory when its slot was taken by another conversation (``cache_bytes``,
  least recently used first out).

An answer does not depend on what else is in flight or cached: the same call gives the same
tokens alone or batched, from a fresh slot, a copy or a saved state. llama.cpp computes a
token's attention differently when it is evaluated on its own (a generated token, a one-token
prompt chunk) than inside a chunk of two or more, and with flash attention its result for one
sequence changes with the lengths of the others in the batch. So flash attention is off, the
KV streams are separate, only prompt tokens (evaluated in chunks of two or more) are kept for
reuse, and no prompt chunk is a single token. ``tests/simulator/test_llama_engine.py`` checks
this on the real model; bench/RESULTS.md has the measurements behind these choices.

Sampling is llama-cpp-python's ``create_chat_completion`` chain (JSON grammar first, then top-k
40, typical 1.0, top-p 0.95, min-p 0.05, temperature, seeded draw; greedy at temperature 0) and
prompts are formatted with the model's own chat template, as that method does.
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.llm._base import BackendConfigError, BackendError, Message

MAX_PROMPT_CHUNK = 512  # tokens evaluated per step for one prompt (llama.cpp's n_batch)
# A call waits for a slot still evaluating a prefix it shares when that prefix is this much
# longer than what it could reuse at once.
_WAIT_FOR_PREFIX = 64


@dataclass
class EngineStats:
    """What the engine did, for benchmarks and tests."""

    calls: int = 0
    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0  # the rest came from a slot, a copy or a saved state
    completion_tokens: int = 0
    decode_steps: int = 0
    decoded_sequences: int = 0  # summed over steps; / decode_steps = mean batch
    copies: int = 0
    restores: int = 0
    saves: int = 0


@dataclass
class _Call:
    messages: list[Message]
    temperature: float
    max_tokens: int
    seed: int | None
    gbnf: str | None
    future: Future[tuple[str, str, int, int]]
    prompt: list[int] = field(default_factory=list)
    stop: list[bytes] = field(default_factory=list)
    sampler: Any = None
    grammar: Any = None  # checked after greedy sampling rather than inside the chain
    pending: list[int] = field(default_factory=list)  # prompt tokens still to evaluate
    generated: list[int] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)
    next_token: int | None = None  # sampled, to be evaluated by the next step


@dataclass
class _Slot:
    seq: int
    tokens: list[int] = field(default_factory=list)  # exactly what its KV stream holds
    call: _Call | None = None
    last_used: int = 0


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class _StateCache:
    """Sequence states saved in memory, keyed by their tokens; least recently used go first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self._items: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def best(self, prompt: Sequence[int]) -> tuple[int, tuple[int, ...] | None]:
        best_n, best_key = 0, None
        for key in self._items:
            n = _common_prefix(key, prompt)
            if n > best_n:
                best_n, best_key = n, key
        return best_n, best_key

    def get(self, key: tuple[int, ...]) -> Any:
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: tuple[int, ...], data: Any) -> None:
        if len(data) > self.capacity or key in self._items:
            return
        self._items[key] = data
        self.size += len(data)
        while self.size > self.capacity:
            _, old = self._items.popitem(last=False)
            self.size -= len(old)

    def covers(self, tokens: Sequence[int]) -> bool:
        """Whether a saved state already holds ``tokens`` (or more of the same)."""
        n, _ = self.best(tokens)
        return n == len(tokens)


class LlamaEngine:
    """One GGUF model serving many chat calls at once; thread-safe ``submit``."""

    def __init__(
        self,
        path: Path,
        *,
        slots: int,
        n_ctx: int,
        n_threads: int,
        cache_bytes: int,
    ) -> None:
        import llama_cpp as lc

        # llama.cpp logs through llama-cpp-python's callback; errors only.
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        self._lc = lc
        self.n_ctx = n_ctx
        self.stats = EngineStats()
        self._model = lc.llama_model_load_from_file(
            str(path).encode(), lc.llama_model_default_params()
        )
        if not self._model:
            raise BackendConfigError(f"llama.cpp could not load {path}")
        self._vocab = lc.llama_model_get_vocab(self._model)
        params = lc.llama_context_default_params()
        params.n_ctx = n_ctx * slots
        params.n_batch = params.n_ubatch = MAX_PROMPT_CHUNK
        params.n_seq_max = slots
        params.n_threads = params.n_threads_batch = n_threads
        params.flash_attn_type = lc.LLAMA_FLASH_ATTN_TYPE_DISABLED  # see the module docstring
        params.kv_unified = False
        params.no_perf = True
        self._ctx = lc.llama_init_from_model(self._model, params)
        if not self._ctx:
            lc.llama_model_free(self._model)
            raise BackendConfigError(f"llama.cpp could not create a context for {path}")
        self._mem = lc.llama_get_memory(self._ctx)
        self._batch = lc.llama_batch_init(max(MAX_PROMPT_CHUNK, slots), 0, 1)
        self._formatter = self._chat_formatter()
        self._eos_text = self._token_text(lc.llama_vocab_eos(self._vocab))
        self._slots = [_Slot(seq=i) for i in range(slots)]
        self._cache = _StateCache(cache_bytes)
        self._queue: deque[_Call] = deque()
        self._incoming: list[_Call] = []
        self._cond = threading.Condition()
        self._closing = False
        self._clock = 0
        self._thread = threading.Thread(target=self._loop, name="clinsim-llama", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public

    def submit(
        self,
        messages: list[Message],
        *,
        temperature: float,
        max_tokens: int,
        seed: int | None,
        schema: dict[str, Any] | None,
    ) -> Future[tuple[str, str, int, int]]:
        """Queue a chat call; the future gives (text, finish reason, prompt tokens, completion
        tokens) or a BackendError. Cancelling the future drops the call."""
        gbnf = None
        if schema is not None:
            from llama_cpp.llama_grammar import json_schema_to_gbnf

            try:
                gbnf = json_schema_to_gbnf(json.dumps(schema))
            except Exception as e:  # the converter's errors are of many kinds
                raise BackendError(
                    "bad_request", f"cannot turn the schema into a grammar: {e}"
                ) from None
        call = _Call(list(messages), temperature, max_tokens, seed, gbnf, Future())
        with self._cond:
            if self._closing:
                raise BackendError("config", "the local model has been closed")
            self._incoming.append(call)
            self._cond.notify()
        return call.future

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        lc = self._lc
        for call in [*self._queue, *(s.call for s in self._slots if s.call)]:
            self._finish_error(call, BackendError("config", "the local model was closed"))
        lc.llama_batch_free(self._batch)
        lc.llama_free(self._ctx)
        lc.llama_model_free(self._model)

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closing and not self._incoming and not self._has_work():
                    self._cond.wait()
                if self._closing:
                    return
                self._queue.extend(self._incoming)
                self._incoming.clear()
            try:
                self._drop_cancelled()
                self._admit()
                self._prefill()
                self._decode()
            except Exception as e:  # never leave callers waiting on a dead thread
                self._fail_all(BackendError("server", f"llama.cpp failed: {e}"))

    def _has_work(self) -> bool:
        busy = any(s.call is not None for s in self._slots)
        return busy or (bool(self._queue) and any(s.call is None for s in self._slots))

    def _drop_cancelled(self) -> None:
        self._queue = deque(c for c in self._queue if not c.future.cancelled())
        for slot in self._slots:
            if slot.call is not None and slot.call.future.cancelled():
                self._release(slot)

    def _fail_all(self, error: BackendError) -> None:
        for call in self._queue:
            self._finish_error(call, error)
        self._queue.clear()
        for slot in self._slots:
            if slot.call is not None:
                self._finish_error(slot.call, error)
                self._release(slot)
            self._lc.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
            slot.tokens = []

    # ------------------------------------------------------------------ admission

    def _admit(self) -> None:
        """Place what waits in the queue on free slots. Every call stays where the error path
        (``_fail_all``) sees it, whatever raises: in the queue or on a slot, never only in a
        local variable."""
        waiting: deque[_Call] = deque()
        try:
            while self._queue:
                call = self._queue.popleft()
                try:
                    placed = self._admit_one(call)
                except BaseException:
                    if not any(s.call is call for s in self._slots):
                        waiting.append(call)
                    raise
                if not placed:
                    waiting.append(call)
        finally:
            waiting.extend(self._queue)
            self._queue = waiting

    def _admit_one(self, call: _Call) -> bool:
        """Place one call (True), or say it must wait (False); a call that cannot run at
        all is answered with its error (True)."""
        free = [s for s in self._slots if s.call is None]
        if not free:
            return False
        if not call.prompt:
            try:
                self._prepare(call)
            except BackendError as e:
                self._finish_error(call, e)
                return True
        if self._should_wait(call):
            return False
        self._place(call, free)
        return True

    def _prepare(self, call: _Call) -> None:
        """Format and tokenize the prompt, check it fits, build the sampler."""
        try:
            formatted = self._formatter(messages=call.messages)
        except Exception as e:  # the template's own checks (role order, ...)
            raise BackendError("bad_request", f"chat template: {e}") from None
        call.prompt = self._tokenize(formatted.prompt, add_special=not formatted.added_special)
        stops = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop]
        call.stop = [s.encode() for s in stops if s]
        if not call.prompt:
            raise BackendError("bad_request", "the prompt is empty")
        if len(call.prompt) >= self.n_ctx:
            raise BackendError(
                "bad_request",
                f"the prompt has {len(call.prompt)} tokens; the context window is {self.n_ctx}",
            )
        call.max_tokens = max(1, min(call.max_tokens, self.n_ctx - len(call.prompt)))
        self._samplers(call)

    def _should_wait(self, call: _Call) -> bool:
        """Wait when a slot is still evaluating a prefix this call shares, rather than
        evaluate it twice."""
        now, _ = self._best_source(call.prompt)
        for slot in self._slots:
            if slot.call is not None and slot.call.pending:
                target = slot.tokens + slot.call.pending
                if _common_prefix(target, call.prompt) > now + _WAIT_FOR_PREFIX:
                    return True
        return False

    @staticmethod
    def _reusable(slot: _Slot) -> list[int]:
        """The tokens of a slot that another call may reuse: prompt tokens only (a generating
        slot also holds the tokens it has generated so far)."""
        return slot.tokens if slot.call is None else slot.tokens[: len(slot.call.prompt)]

    def _best_source(self, prompt: Sequence[int]) -> tuple[int, _Slot | tuple[int, ...] | None]:
        best_n: int = 0
        best: _Slot | tuple[int, ...] | None = None
        for slot in self._slots:
            n = _common_prefix(self._reusable(slot), prompt)
            if n > best_n:
                best_n, best = n, slot
        n, key = self._cache.best(prompt)
        if n > best_n:
            best_n, best = n, key
        return best_n, best

    def _place(self, call: _Call, free: list[_Slot]) -> None:
        lc = self._lc
        prompt = call.prompt
        # the free slot that holds most of the prompt, else the least recently used one
        slot = max(free, key=lambda s: (_common_prefix(s.tokens, prompt), -s.last_used))
        keep = _common_prefix(slot.tokens, prompt)
        n, source = self._best_source(prompt)
        # Take a saved source state before saving the slot's own: the save may evict it.
        data = self._cache.get(source) if n > keep and isinstance(source, tuple) else None
        if keep < len(slot.tokens) // 2:
            self._save(slot)  # another conversation's state: keep it for its next call
        if n > keep and isinstance(source, _Slot):
            lc.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
            lc.llama_memory_seq_cp(self._mem, source.seq, slot.seq, -1, -1)  # whole only
            slot.tokens = list(source.tokens)  # cut to `keep` below
            self.stats.copies += 1
            keep = n
        elif data is not None and isinstance(source, tuple):
            lc.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
            if lc.llama_state_seq_set_data(self._ctx, data, len(data), slot.seq) == 0:
                slot.tokens = []
                keep = 0
            else:
                slot.tokens = list(source)
                self.stats.restores += 1
                keep = n
        # at least the last two prompt tokens are evaluated: the last for its logits, and not
        # on its own (see the module docstring)
        keep = max(0, min(keep, len(prompt) - 2))
        lc.llama_memory_seq_rm(self._mem, slot.seq, keep, -1)
        del slot.tokens[keep:]
        call.pending = prompt[keep:]
        slot.call = call
        self.stats.calls += 1
        self.stats.prompt_tokens += len(prompt)
        self.stats.prompt_tokens_evaluated += len(call.pending)

    def _save(self, slot: _Slot) -> None:
        if not self._cache.capacity or not slot.tokens or self._cache.covers(slot.tokens):
            return
        lc = self._lc
        size = lc.llama_state_seq_get_size(self._ctx, slot.seq)
        if size > self._cache.capacity:
            return
        data = (ctypes.c_uint8 * size)()
        if lc.llama_state_seq_get_data(self._ctx, data, size, slot.seq):
            self._cache.put(tuple(slot.tokens), data)
            self.stats.saves += 1

    # ------------------------------------------------------------------ evaluation

    def _prefill(self) -> None:
        """Evaluate the next chunk of one waiting prompt (the slot that has waited longest)."""
        filling = [s for s in self._slots if s.call is not None and s.call.pending]
        if not filling:
            return
        slot = min(filling, key=lambda s: s.last_used)
        call = slot.call
        assert call is not None
        size = min(MAX_PROMPT_CHUNK, len(call.pending))
        if len(call.pending) - size == 1:
            size -= 1  # never leave a one-token chunk (see the module docstring)
        chunk = call.pending[:size]
        last = len(chunk) == len(call.pending)
        start = len(slot.tokens)
        self._fill_batch([(t, start + i, slot.seq, last and i == len(chunk) - 1)
                          for i, t in enumerate(chunk)])  # fmt: skip
        self._run_batch()
        slot.tokens += chunk
        del call.pending[: len(chunk)]
        self._touch(slot)
        if last:
            self._sample(slot, len(chunk) - 1)

    def _decode(self) -> None:
        """One token for every generating slot, in one batch."""
        active = [s for s in self._slots if s.call is not None and s.call.next_token is not None]
        if not active:
            return
        entries = []
        for slot in active:
            assert slot.call is not None and slot.call.next_token is not None
            entries.append((slot.call.next_token, len(slot.tokens), slot.seq, True))
        self._fill_batch(entries)
        self._run_batch()
        self.stats.decode_steps += 1
        self.stats.decoded_sequences += len(active)
        for i, slot in enumerate(active):
            assert slot.call is not None and slot.call.next_token is not None
            slot.tokens.append(slot.call.next_token)
            slot.call.next_token = None
            self._sample(slot, i)

    def _fill_batch(self, entries: list[tuple[int, int, int, bool]]) -> None:
        b = self._batch
        for i, (token, pos, seq, logits) in enumerate(entries):
            b.token[i] = token
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        b.n_tokens = len(entries)

    def _run_batch(self) -> None:
        rc = self._lc.llama_decode(self._ctx, self._batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def _sample(self, slot: _Slot, index: int) -> None:
        lc = self._lc
        call = slot.call
        assert call is not None
        token = lc.llama_sampler_sample(call.sampler, self._ctx, index)
        if call.grammar is not None:
            if not self._allowed(call.grammar, token):
                token = self._constrained_greedy(call, index)
            lc.llama_sampler_accept(call.grammar, token)
        if lc.llama_vocab_is_eog(self._vocab, token):
            self._finish(slot, "stop")
            return
        call.generated.append(token)
        piece = self._piece(token)
        call.text += piece
        for stop in call.stop:
            at = call.text.find(stop, max(0, len(call.text) - len(piece) - len(stop)))
            if at != -1:
                del call.text[at:]
                self._finish(slot, "stop")
                return
        if len(call.generated) >= call.max_tokens or len(slot.tokens) + 1 >= self.n_ctx:
            self._finish(slot, "length")
            return
        call.next_token = token

    # ------------------------------------------------------------------ endings

    def _finish(self, slot: _Slot, reason: str) -> None:
        call = slot.call
        assert call is not None
        self.stats.completion_tokens += len(call.generated)
        text = bytes(call.text).decode("utf-8", errors="ignore")
        if not call.future.cancelled():
            call.future.set_result((text, reason, len(call.prompt), len(call.generated)))
        self._release(slot)

    def _finish_error(self, call: _Call, error: BackendError) -> None:
        self._free_samplers(call)
        if not call.future.done():
            call.future.set_exception(error)

    def _release(self, slot: _Slot) -> None:
        call = slot.call
        if call is not None:
            self._free_samplers(call)
            call.pending = []  # a call dropped half-way through its prompt
            if len(slot.tokens) > len(call.prompt):  # generated tokens are not kept
                self._lc.llama_memory_seq_rm(self._mem, slot.seq, len(call.prompt), -1)
                del slot.tokens[len(call.prompt) :]
        slot.call = None
        self._touch(slot)

    def _free_samplers(self, call: _Call) -> None:
        for sampler in (call.sampler, call.grammar):
            if sampler is not None:
                self._lc.llama_sampler_free(sampler)
        call.sampler = call.grammar = None

    def _touch(self, slot: _Slot) -> None:
        self._clock += 1
        slot.last_used = self._clock

    # ------------------------------------------------------------------ model helpers

    def _samplers(self, call: _Call) -> None:
        """The sampling chain, and for greedy calls with a grammar the grammar on its own.

        A grammar inside the chain checks every token of the vocabulary at every step, which
        costs as much as the model itself on SmolLM2 (bench/RESULTS.md). A greedy call instead
        takes the most likely token and asks the grammar about that one token; only when the
        grammar refuses it are all tokens checked (``_constrained_greedy``). The result is the
        same token: the most likely allowed one. With sampling at a temperature the grammar
        stays first in the chain, where it shapes the distribution sampled from."""
        lc = self._lc
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        call.sampler = chain
        if call.gbnf is not None:
            grammar = lc.llama_sampler_init_grammar(self._vocab, call.gbnf.encode(), b"root")
            if not grammar:
                raise BackendError("bad_request", "llama.cpp rejected the JSON grammar")
            if call.temperature == 0:
                call.grammar = grammar
            else:
                lc.llama_sampler_chain_add(chain, grammar)
        if call.temperature == 0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
            return
        for sampler in (
            lc.llama_sampler_init_top_k(40),
            lc.llama_sampler_init_typical(1.0, 1),
            lc.llama_sampler_init_top_p(0.95, 1),
            lc.llama_sampler_init_min_p(0.05, 1),
            lc.llama_sampler_init_temp(call.temperature),
            lc.llama_sampler_init_dist(
                lc.LLAMA_DEFAULT_SEED if call.seed is None else call.seed & 0xFFFFFFFF
            ),
        ):
            lc.llama_sampler_chain_add(chain, sampler)

    def _allowed(self, grammar: Any, token: int) -> bool:
        lc = self._lc
        one = lc.llama_token_data(id=token, logit=0.0, p=0.0)
        cur = lc.llama_token_data_array(data=ctypes.pointer(one), size=1, selected=-1, sorted=False)
        lc.llama_sampler_apply(grammar, ctypes.byref(cur))
        return bool(math.isfinite(one.logit))

    def _constrained_greedy(self, call: _Call, index: int) -> int:
        """The most likely token that the grammar allows."""
        import numpy as np

        lc = self._lc
        n = lc.llama_vocab_n_tokens(self._vocab)
        logits = np.ctypeslib.as_array(lc.llama_get_logits_ith(self._ctx, index), shape=(n,))
        data = (lc.llama_token_data * n)()
        view = np.frombuffer(data, dtype=[("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
        view["id"] = np.arange(n, dtype=np.int32)
        view["logit"] = logits
        cur = lc.llama_token_data_array(data=data, size=n, selected=-1, sorted=False)
        lc.llama_sampler_apply(call.grammar, ctypes.byref(cur))
        lc.llama_sampler_apply(call.sampler, ctypes.byref(cur))  # greedy: sets `selected`
        return int(data[cur.selected].id)

    def _chat_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        lc = self._lc
        template = self._meta("tokenizer.chat_template")
        if not template:
            raise BackendConfigError("the model file has no chat template")
        eos, bos = lc.llama_vocab_eos(self._vocab), lc.llama_vocab_bos(self._vocab)
        return Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(eos) if eos != -1 else "",
            bos_token=self._token_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )

    def _meta(self, key: str) -> str:
        buf = ctypes.create_string_buffer(1 << 16)
        n = self._lc.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode() if n >= 0 else ""

    def _token_text(self, token: int) -> str:
        text: bytes = self._lc.llama_vocab_get_text(self._vocab, token)
        return text.decode("utf-8", errors="replace")

    def _tokenize(self, text: str, *, add_special: bool) -> list[int]:
        lc = self._lc
        raw = text.encode()
        size = len(raw) + 8
        out = (lc.llama_token * size)()
        n = lc.llama_tokenize(self._vocab, raw, len(raw), out, size, add_special, True)
        if n < 0:
            size = -n
            out = (lc.llama_token * size)()
            n = lc.llama_tokenize(self._vocab, raw, len(raw), out, size, add_special, True)
        return list(out[:n])

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self._lc.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._lc.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        return buf.raw[:n]
