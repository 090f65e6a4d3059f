"""The ``llama.cpp`` engine of the local backend: generation on the base model's GGUF file as it
ships (4-bit, where the transformers backend runs a float32 copy), through llama-cpp-python's
low-level API.

One llama.cpp context holds a sequence per row of a batch and one for the prompt prefix the batch
shares (the skill text, the worked examples): the prefix is decoded once and every row's sequence
starts from its cells, the rows' own prompt ends are decoded together, then one token per row per
step. Tokens are sampled here, from the logits, so that decoding can be held to a skill's checks
(s2l/models/constrain.py) exactly as in the transformers backend, and the openings a check allows
are scored here too. Prompts are built and answers decoded with the prepared model's tokenizer, as
there (s2l/models/generation.py), which stays the reference backend; the evaluation's answers and
reference NLL are still computed in torch.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import llama_cpp
import numpy as np
from llama_cpp._internals import LlamaContext, LlamaModel
from tqdm import tqdm

from s2l.models.backend import Completion, Sampling, Usage, opening_scores
from s2l.models.chat import (
    Message,
    batches_by_length,
    common_prefix_length,
    prompts_with_starts,
    stop_token_ids,
    supervised_ids,
)
from s2l.models.constrain import CheckConstraint, HeldToChecks, token_texts

# Tokens one decode call takes (llama.cpp's n_batch): a longer prompt end is decoded in pieces.
DECODE_CHUNK = 512
# Nucleus sampling sorts only this many likeliest tokens unless they hold less than top_p.
NUCLEUS_CANDIDATES = 256


def nucleus_sample(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> np.ndarray:
    """One token per row of ``logits`` (rows x vocabulary): the argmax at temperature 0, else drawn
    from the softmax at the temperature, cut to the smallest set of likeliest tokens holding ``top_p``
    of the mass (as transformers' TopPLogitsWarper)."""
    if sampling.temperature == 0:
        return logits.argmax(axis=1)
    scaled = logits / sampling.temperature
    probabilities = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    tokens = np.empty(len(logits), dtype=np.int64)
    width = min(NUCLEUS_CANDIDATES, logits.shape[1] - 1)
    candidates = np.argpartition(-probabilities, width, axis=1)[:, :width]
    for row, (row_probabilities, row_candidates) in enumerate(zip(probabilities, candidates)):
        if row_probabilities[row_candidates].sum() < sampling.top_p:
            row_candidates = np.arange(len(row_probabilities))
        ordered = row_candidates[np.argsort(-row_probabilities[row_candidates], kind="stable")]
        mass = np.cumsum(row_probabilities[ordered])
        kept = ordered[: int(np.searchsorted(mass, sampling.top_p)) + 1]
        weights = row_probabilities[kept]
        tokens[row] = kept[min(int(np.searchsorted(np.cumsum(weights), rng.random() * weights.sum())),
                               len(kept) - 1)]
    return tokens


def log_softmax_at(logits: np.ndarray, token: int) -> float:
    """log p(token) under the softmax of ``logits``."""
    top = logits.max()
    return float(logits[token] - top - np.log(np.exp(logits - top).sum()))


def likeliest(row_logits: np.ndarray) -> Callable[[int], list[int]]:
    """``likeliest(n)``: the ids of the n highest logits of a row, best first."""
    def top(count: int) -> list[int]:
        if count >= len(row_logits):
            return np.argsort(-row_logits, kind="stable").tolist()
        top_ids = np.argpartition(-row_logits, count)[:count]
        return top_ids[np.argsort(-row_logits[top_ids], kind="stable")].tolist()
    return top


def to_gguf_rows(weights: np.ndarray, heads: int) -> np.ndarray:
    """A query or key projection's output rows in the order a llama-architecture GGUF stores them:
    the conversion to GGUF interleaves each head's two rotary halves (convert_hf_to_gguf.py's permute)."""
    return weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:]) \
        .swapaxes(1, 2).reshape(weights.shape)


def write_gguf_lora(adapter_dir: Path, base_config: dict, out: Path) -> Path:
    """A PEFT LoRA adapter of a llama-architecture model as llama.cpp loads one: a GGUF file of type
    ``adapter`` with each ``lora_A`` / ``lora_B`` under the GGUF name of the weight it adapts (the
    ``gguf`` package's own name map), the B of the query and key projections in GGUF row order, and
    ``lora_alpha``, so llama.cpp scales the update by alpha / r as PEFT does."""
    import gguf
    from safetensors.numpy import load_file

    settings = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, base_config["num_hidden_layers"])
    heads = {"q_proj": base_config["num_attention_heads"],
             "k_proj": base_config.get("num_key_value_heads", base_config["num_attention_heads"])}
    writer = gguf.GGUFWriter(out, "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(settings["lora_alpha"]))
    for key, tensor in sorted(load_file(str(adapter_dir / "adapter_model.safetensors")).items()):
        # base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
        module, part = key.removeprefix("base_model.model.").rsplit(".lora_", 1)
        name = names.get_name(module)
        if name is None:
            raise ValueError(f"{adapter_dir}: LoRA weight {key} adapts {module}, which llama.cpp's llama "
                             "architecture does not have")
        projection = module.rsplit(".", 1)[-1]
        if part == "B.weight" and projection in heads:
            tensor = to_gguf_rows(tensor, heads[projection])
        writer.add_tensor(f"{name}.weight.lora_{part[0].lower()}", tensor.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


class LlamaCppModel:
    """A GGUF model loaded in llama.cpp, with the one context its backends decode in (one job runs
    one generation at a time: the generator's, then the teacher's)."""

    def __init__(self, gguf: Path, tokenizer, model_id: str, threads: int | None = None,
                 flash_attention: bool = True) -> None:
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.threads = threads or os.cpu_count() or 1
        self.flash_attention = flash_attention
        self.stops = stop_token_ids(tokenizer)
        # llama.cpp logs every context and graph it builds to stderr unless its logger says otherwise.
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        self._model = LlamaModel(path_model=str(gguf), params=llama_cpp.llama_model_default_params(), verbose=False)
        self.vocabulary = llama_cpp.llama_vocab_n_tokens(self._model.vocab)
        self._context: LlamaContext | None = None
        self._shape = (0, 0)  # (cells, sequences) of the context
        self._batch = llama_cpp.llama_batch_init(DECODE_CHUNK, 0, 1)
        self._adapters: dict[Path, object] = {}

    def backend(self, batch_size: int, adapter: Path | None = None) -> LlamaCppBackend:
        """A backend that decodes with ``adapter`` (a GGUF LoRA file, write_gguf_lora) active, or none."""
        return LlamaCppBackend(self, batch_size, self._adapter(adapter) if adapter else None)

    def _adapter(self, path: Path):
        if path not in self._adapters:
            handle = llama_cpp.llama_adapter_lora_init(self._model.model, str(path).encode())
            if not handle:
                raise ValueError(f"llama.cpp could not load the LoRA adapter {path}")
            self._adapters[path] = handle
        return self._adapters[path]

    def _use_adapter(self, context: LlamaContext, adapter) -> None:
        """Decode in ``context`` with ``adapter`` (a loaded one) active at scale 1, or with none."""
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter) if adapter else None
        scales = (ctypes.c_float * 1)(1.0) if adapter else None
        if llama_cpp.llama_set_adapters_lora(context.ctx, adapters, int(bool(adapter)), scales) != 0:
            raise RuntimeError("llama.cpp: llama_set_adapters_lora failed")

    @cached_property
    def token_texts(self) -> list[str]:
        return token_texts(self.tokenizer)

    def context(self, cells: int, sequences: int, adapter=None) -> LlamaContext:
        """A context of ``sequences`` sequences with room for ``cells`` tokens in all (a prefix the
        sequences share takes its cells once), decoding with ``adapter`` (a loaded one) or none; made
        again only to grow."""
        if self._context is None or cells > self._shape[0] or sequences > self._shape[1]:
            self._shape = (-(-max(cells, self._shape[0]) // 256) * 256, max(sequences, self._shape[1]))
            params = llama_cpp.llama_context_default_params()
            params.n_ctx, params.n_seq_max = self._shape
            params.n_batch = params.n_ubatch = DECODE_CHUNK
            # One buffer for all sequences, so the rows attend over the prefix's own cells (measured:
            # 132 tokens/s against 118 with a buffer per sequence, teacher prompts of 540 tokens, 32 rows).
            params.kv_unified = True
            # Flash attention skips the cells a row's mask hides (the other rows' own), where plain
            # attention multiplies them all: off, the teacher decodes 1.19x slower, and other tokens
            # (benchmarks/results/engine_throughput.json). llama.cpp's auto setting turns it on here;
            # set, so that a llama.cpp whose auto decides otherwise changes no answer.
            params.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if self.flash_attention
                                      else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
            params.n_threads = params.n_threads_batch = self.threads
            params.no_perf = True
            if self._context is not None:
                self._context.close()
            self._context = LlamaContext(model=self._model, params=params, verbose=False)
        self._use_adapter(self._context, adapter)
        return self._context

    def decode(self, context: LlamaContext, entries: list[tuple[int, int, int, bool]]) -> list[np.ndarray]:
        """Decode (token, position, sequence, wants logits) entries, in chunks; the logits asked for, in order."""
        logits = []
        for start in range(0, len(entries), DECODE_CHUNK):
            chunk = entries[start: start + DECODE_CHUNK]
            batch = self._batch
            batch.n_tokens = len(chunk)
            for i, (token, position, sequence, wanted) in enumerate(chunk):
                batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, position, 1, wanted
                batch.seq_id[i][0] = sequence
            code = llama_cpp.llama_decode(context.ctx, batch)
            if code != 0:
                raise RuntimeError(f"llama.cpp: llama_decode returned {code} for {len(chunk)} tokens")
            logits += [np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(context.ctx, i), shape=(self.vocabulary,))
                       .copy() for i, (_, _, _, wanted) in enumerate(chunk) if wanted]
        return logits

    def start_rows(self, context: LlamaContext, rows: int, prefix: int, shared: int) -> None:
        """Sequences 0 .. rows - 1 emptied, each starting from the cells of the prefix in sequence ``shared``."""
        memory = llama_cpp.llama_get_memory(context.ctx)
        for row in range(rows):
            llama_cpp.llama_memory_seq_rm(memory, row, -1, -1)
            if prefix:
                llama_cpp.llama_memory_seq_cp(memory, shared, row, -1, -1)

    def start_prefix(self, context: LlamaContext, tokens: list[int], shared: int) -> None:
        """The context emptied and ``tokens`` decoded into sequence ``shared``, the prefix's own."""
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(context.ctx), True)
        if tokens:
            self.decode(context, [(token, position, shared, False) for position, token in enumerate(tokens)])


class LlamaCppBackend:
    """Batched generation on a llama.cpp model; the prefix a batch shares has sequence ``batch_size``,
    the rows 0 .. batch_size - 1."""

    def __init__(self, model: LlamaCppModel, batch_size: int = 16, adapter=None) -> None:
        self.model = model
        self.adapter = adapter
        self.tokenizer = model.tokenizer
        self.model_id = model.model_id
        self.batch_size = batch_size
        self.stops = model.stops
        self.usage = Usage()

    def complete(
        self, conversations: list[list[Message]], sampling: Sampling, seed: int, desc: str = "",
        answer_start: str | list[str] = "", stop: str = "", json_schema: dict | None = None,
        constraint: CheckConstraint | None = None,
    ) -> list[Completion]:
        started = time.monotonic()
        starts, encoded = prompts_with_starts(self.tokenizer, conversations, answer_start)
        prefix = common_prefix_length(encoded)
        batches = batches_by_length(encoded, self.batch_size)
        rows = min(self.batch_size, len(encoded))
        context = self.model.context(
            prefix + rows * (max(len(prompt) for prompt in encoded) - prefix + sampling.max_new_tokens), self.batch_size + 1,
            self.adapter)
        self.model.start_prefix(context, encoded[0][:prefix], self.batch_size)
        held = HeldToChecks(constraint, self.tokenizer, self.model.token_texts, 0, [], self.stops) if constraint else None
        results: list[Completion | None] = [None] * len(encoded)
        with tqdm(total=len(encoded), desc=desc or "generate", unit="answer") as bar:
            for number, batch in enumerate(batches):
                rng = np.random.default_rng(seed + number)
                for index, completion in zip(batch, self._generate(
                        context, [encoded[i] for i in batch], prefix, sampling, [starts[i] for i in batch], stop,
                        held, rng)):
                    results[index] = completion
                bar.update(len(batch))
        self.usage.requests += len(results)
        self.usage.sent += len(results)
        self.usage.add(results, started)  # type: ignore[arg-type]
        return results  # type: ignore[return-value]

    def opening_scores(self, conversations: list[list[Message]], openings: tuple[str, ...],
                       calibrated: bool = False) -> list[list[float]]:
        return opening_scores(self._log_likelihoods, conversations, openings, calibrated)

    def _log_likelihoods(self, conversations: list[list[Message]], openings: list[str]) -> list[float]:
        """The summed log-likelihood of each opening's tokens after its conversation. Each distinct
        conversation's prompt is decoded once; its openings are decoded after it in turn, each taken
        out again before the next (the calibrated teacher asks some 11 openings of every request)."""
        prompts = {}  # distinct prompt -> its token ids
        pairs = []
        for messages, opening in zip(conversations, openings):
            ids, labels = supervised_ids(self.tokenizer, messages, opening, closed=False)
            start = next(index for index, label in enumerate(labels) if label != -100)
            prompts.setdefault(tuple(ids[:start]), ids[:start])
            pairs.append((tuple(ids[:start]), ids[start:]))
        distinct = list(prompts.values())
        # The shared prefix must end inside every prompt.
        prefix = common_prefix_length(distinct)
        rows = min(self.batch_size, len(distinct))
        longest_opening = max(len(tokens) for _, tokens in pairs)
        context = self.model.context(prefix + rows * (max(map(len, distinct)) - prefix + longest_opening),
                                     self.batch_size + 1, self.adapter)
        self.model.start_prefix(context, distinct[0][:prefix], self.batch_size)
        memory = llama_cpp.llama_get_memory(context.ctx)
        scores: dict[tuple[tuple[int, ...], tuple[int, ...]], float] = {}
        for first in range(0, len(distinct), self.batch_size):
            batch = distinct[first: first + self.batch_size]
            self.model.start_rows(context, len(batch), prefix, self.batch_size)
            # The last prompt token's logits score every opening's first token.
            last = self.model.decode(context, [(token, prefix + offset, row, offset == len(prompt) - prefix - 1)
                                               for row, prompt in enumerate(batch)
                                               for offset, token in enumerate(prompt[prefix:])])
            here = set(map(tuple, batch))
            asked = {(prompt, tuple(tokens)) for prompt, tokens in pairs if prompt in here}
            for tokens in sorted({tokens for _, tokens in asked}):
                rows_asking = [row for row, prompt in enumerate(batch) if (tuple(prompt), tokens) in asked]
                later = iter(self.model.decode(context, [
                    (token, len(batch[row]) + offset, row, offset + 1 < len(tokens))
                    for row in rows_asking for offset, token in enumerate(tokens)]))
                for row in rows_asking:
                    steps = [last[row]] + [next(later) for _ in range(len(tokens) - 1)]
                    scores[(tuple(batch[row]), tokens)] = sum(log_softmax_at(step, token)
                                                              for step, token in zip(steps, tokens))
                    llama_cpp.llama_memory_seq_rm(memory, row, len(batch[row]), -1)
        return [scores[(prompt, tuple(tokens))] for prompt, tokens in pairs]

    def _generate(
        self, context: LlamaContext, prompts: list[list[int]], prefix: int, sampling: Sampling,
        answer_starts: list[str], stop: str, held: HeldToChecks | None, rng: np.random.Generator,
    ) -> list[Completion]:
        self.model.start_rows(context, len(prompts), prefix, self.batch_size)
        logits = dict(enumerate(self.model.decode(context, [
            (token, prefix + offset, row, offset == len(prompt) - prefix - 1)
            for row, prompt in enumerate(prompts) for offset, token in enumerate(prompt[prefix:])])))
        answers: list[list[int]] = [[] for _ in prompts]
        ended: dict[int, str] = {}  # row -> how its answer ended: "end_of_turn", "stop" (the string), "length"
        # Tokens enough to hold ``stop`` whole: each token is at least one character.
        stop_window = len(stop) + 2
        for step in range(sampling.max_new_tokens):
            active = [row for row in range(len(prompts)) if row not in ended]
            if not active:
                break
            rows = np.stack([logits[row] for row in active])
            if held is not None:
                for position, row in enumerate(active):
                    text = answer_starts[row] + self.tokenizer.decode(answers[row], skip_special_tokens=True)
                    allowed = held.allowed_next(text, likeliest(rows[position]), self.model.vocabulary)
                    masked = np.full(self.model.vocabulary, -np.inf, dtype=rows.dtype)
                    masked[allowed] = rows[position, allowed]
                    rows[position] = masked
            going_on = []
            for row, token in zip(active, nucleus_sample(rows, sampling, rng).tolist()):
                if token in self.stops:
                    ended[row] = "end_of_turn"
                    continue
                answers[row].append(token)
                if stop and stop in self.tokenizer.decode(answers[row][-stop_window:], skip_special_tokens=True):
                    ended[row] = "stop"
                elif step + 1 == sampling.max_new_tokens:
                    ended[row] = "length"
                else:
                    going_on.append((token, len(prompts[row]) + len(answers[row]) - 1, row, True))
            if going_on:
                logits = dict(zip([row for _, _, row, _ in going_on], self.model.decode(context, going_on)))
        return [Completion(
            text=(start + self.tokenizer.decode(answer, skip_special_tokens=True)).strip(),
            finish_reason="length" if ended.get(row, "length") == "length" else "stop",
            prompt_tokens=len(prompt),
            # The end of turn is a token the model wrote, as the transformers backend counts it.
            completion_tokens=len(answer) + int(ended.get(row) == "end_of_turn"),
        ) for row, (prompt, start, answer) in enumerate(zip(prompts, answer_starts, answers))]
