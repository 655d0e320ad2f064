"""``hf:PATH_OR_ID`` — a Hugging Face causal LM through transformers, with its chat template.

Generation runs in a worker thread, one call at a time per model, off the event loop. Nothing is
downloaded at run time unless the user's environment allows it: a local folder is the normal case.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from simulator.llm._base import BackendConfigError, BackendError, Completion, JsonSchema, Message

_load_lock = threading.Lock()
_loaded: dict[str, tuple[Any, Any]] = {}


def _load(path_or_id: str) -> tuple[Any, Any]:
    with _load_lock:
        if path_or_id not in _loaded:
            try:
                import torch  # noqa: F401
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError:
                raise BackendConfigError(
                    "the hf: backend needs torch and transformers: pip install 'clinsim[hf]'"
                ) from None
            try:
                tok = AutoTokenizer.from_pretrained(path_or_id)
                model = AutoModelForCausalLM.from_pretrained(path_or_id)
            except (OSError, ValueError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise BackendConfigError(
                    f"hf:{path_or_id}: cannot load model ({first[:160]}); give a local folder "
                    "with config.json, weights and tokenizer"
                ) from None
            model.eval()
            _loaded[path_or_id] = (tok, model)
        return _loaded[path_or_id]


def export_gguf_to_hf(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantize a GGUF file into a transformers folder (needs the ``gguf`` package)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    # The tensors are already dequantized to float; transformers still tags the model as
    # "quantized with gguf" and refuses to save it. Drop the tag, keep the weights.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tok.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    return out_dir


class HFBackend:
    """transformers generate() behind the async protocol."""

    def __init__(self, path_or_id: str) -> None:
        if not path_or_id:
            raise BackendConfigError(
                "hf: spec needs a folder or model id, e.g. hf:./models/smollm2"
            )
        self.path_or_id = path_or_id
        self.spec = f"hf:{path_or_id}"
        self._lock = threading.Lock()

    def _generate(
        self, messages: list[Message], temperature: float, max_tokens: int, seed: int | None
    ) -> Completion:
        import torch

        tok, model = _load(self.path_or_id)
        with self._lock:
            start = time.perf_counter()
            try:
                inputs = tok.apply_chat_template(
                    list(messages),
                    add_generation_prompt=True,
                    return_tensors="pt",
                    return_dict=True,
                )
            except ValueError as e:
                raise BackendError("bad_request", f"{self.spec}: chat template: {e}") from None
            if seed is not None:
                torch.manual_seed(seed)
            gen_kwargs: dict[str, Any] = {
                "max_new_tokens": max_tokens,
                "pad_token_id": tok.pad_token_id
                if tok.pad_token_id is not None
                else tok.eos_token_id,
            }
            if temperature > 0:
                gen_kwargs.update(do_sample=True, temperature=temperature)
            else:
                gen_kwargs.update(do_sample=False)
            with torch.inference_mode():
                out = model.generate(**inputs, **gen_kwargs)
            prompt_len = inputs["input_ids"].shape[1]
            new_tokens = out[0][prompt_len:]
            text = tok.decode(new_tokens, skip_special_tokens=True)
            eos = tok.eos_token_id
            hit_eos = len(new_tokens) > 0 and int(new_tokens[-1]) == eos
            finish = "length" if len(new_tokens) >= max_tokens and not hit_eos else "stop"
            return Completion(
                text=text.strip(),
                finish_reason=finish,
                prompt_tokens=int(prompt_len),
                completion_tokens=len(new_tokens),
                latency_s=time.perf_counter() - start,
            )

    async def complete(
        self,
        messages: list[Message],
        *,
        temperature: float = 0.7,
        max_tokens: int = 256,
        seed: int | None = None,
        response_format: JsonSchema | None = None,
    ) -> Completion:
        completion = await asyncio.to_thread(
            self._generate, messages, temperature, max_tokens, seed
        )
        if response_format is not None:
            completion.structured = "prompt"
        return completion

    async def check(self) -> None:
        await asyncio.to_thread(_load, self.path_or_id)

    async def aclose(self) -> None:
        return None
