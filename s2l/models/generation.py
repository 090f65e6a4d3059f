"""The ``local`` generation backend: batched in-process generation with the prepared model, a shared
prompt prefix computed once, decoding held to a skill's checks. What every backend takes and gives,
this one and the ``openai`` one (s2l/models/endpoint.py), is in s2l/models/backend.py."""

from __future__ import annotations

import copy
import time
from functools import cached_property

import torch
from tqdm import tqdm
from transformers import DynamicCache, LogitsProcessorList

from s2l.models.backend import Completion, Sampling, Usage, opening_scores
from s2l.models.chat import Message, batches_by_length, common_prefix_length, prompts_with_starts, stop_token_ids
from s2l.models.constrain import CheckConstraint, HeldToChecks, token_texts

# A shared prompt prefix shorter than this is not worth a separate cached forward pass.
MIN_CACHED_PREFIX = 16


class PrefixCache:
    """Key/value cache of a prompt prefix shared by a batch (the skill text, the system prompt).

    On a 2-core CPU the prefill of a ~550-token SKILL.md dominates generation; computing it once
    and copying it into every row makes skill-in-context generation and scoring several times faster.
    """

    def __init__(self, model, sequences: list[list[int]]) -> None:
        self.length = common_prefix_length(sequences)
        self._cache: DynamicCache | None = None
        if self.length >= MIN_CACHED_PREFIX:
            self._cache = DynamicCache()
            with torch.inference_mode():
                model(input_ids=torch.tensor([sequences[0][: self.length]], device=model.device), cache=self._cache)
        else:
            self.length = 0

    def for_batch(self, rows: int) -> DynamicCache | None:
        if self._cache is None:
            return None
        cache = copy.deepcopy(self._cache)
        cache.batch_repeat_interleave(rows)
        return cache


def pad_after_prefix(sequences: list[list[int]], prefix: int, pad: int,
                     device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Pad each row between the shared prefix and its own suffix, so rows end together; the ids and
    the attention mask are made on ``device`` (the model's).

    Position ids follow the attention mask, so the gap of padding shifts no position.
    """
    width = max(len(s) for s in sequences)
    ids, mask = [], []
    for s in sequences:
        gap = width - len(s)
        ids.append(s[:prefix] + [pad] * gap + s[prefix:])
        mask.append([1] * prefix + [0] * gap + [1] * (len(s) - prefix))
    return torch.tensor(ids, device=device), torch.tensor(mask, device=device)


class LocalBackend:
    """Batched generation with a transformers model held in this process."""

    def __init__(self, model, tokenizer, model_id: str, batch_size: int = 16) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.batch_size = batch_size
        self.usage = Usage()
        self.stops = stop_token_ids(tokenizer)

    @torch.inference_mode()
    def complete(
        self, conversations: list[list[Message]], sampling: Sampling, seed: int, desc: str = "",
        answer_start: str | list[str] = "", stop: str = "", json_schema: dict | None = None,
        constraint: CheckConstraint | None = None,
    ) -> list[Completion]:
        started = time.monotonic()
        starts, encoded = prompts_with_starts(self.tokenizer, conversations, answer_start)
        prefix = PrefixCache(self.model, encoded)
        results: list[Completion | None] = [None] * len(encoded)
        batches = batches_by_length(encoded, self.batch_size)
        with tqdm(total=len(encoded), desc=desc or "generate", unit="answer") as bar:
            for number, batch in enumerate(batches):
                torch.manual_seed(seed + number)
                for index, completion in zip(batch, self._generate([encoded[i] for i in batch], prefix, sampling,
                                                                   [starts[i] for i in batch], stop, constraint)):
                    results[index] = completion
                bar.update(len(batch))
        self.usage.requests += len(results)
        self.usage.sent += len(results)
        self.usage.add(results, started)  # type: ignore[arg-type]
        return results  # type: ignore[return-value]

    def opening_scores(self, conversations: list[list[Message]], openings: tuple[str, ...],
                       calibrated: bool = False) -> list[list[float]]:
        """Uncalibrated, a small model's prior decides: after conventional-commits' worked examples
        SmolLM2-135M puts 0.69-0.99 on ``feat`` for every commit (a README edit, new tests, a version
        bump); calibrated, a rename scores highest as ``refactor`` and new tests as ``test``."""
        return opening_scores(self._log_likelihoods, conversations, openings, calibrated)

    def _log_likelihoods(self, conversations: list[list[Message]], openings: list[str]) -> list[float]:
        from s2l.models.scoring import answer_nll

        return [-nll for nll in answer_nll(self.model, self.tokenizer, conversations, openings, self.batch_size,
                                           whole=False)]

    @cached_property
    def token_texts(self) -> list[str]:
        return token_texts(self.tokenizer)

    def _generate(
        self, prompts: list[list[int]], prefix: PrefixCache, sampling: Sampling, answer_starts: list[str], stop: str,
        constraint: CheckConstraint | None = None,
    ) -> list[Completion]:
        pad, stops = self.tokenizer.pad_token_id, self.stops
        input_ids, attention_mask = pad_after_prefix(prompts, prefix.length, pad, self.model.device)
        sample = sampling.temperature > 0
        held = [HeldToChecks(constraint, self.tokenizer, self.token_texts, input_ids.shape[1], answer_starts,
                             stops)] if constraint else []
        output = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            cache=prefix.for_batch(len(prompts)),
            max_new_tokens=sampling.max_new_tokens,
            do_sample=sample,
            temperature=sampling.temperature if sample else None,
            top_p=sampling.top_p if sample else None,
            top_k=None,
            pad_token_id=pad,
            eos_token_id=stops[0] if len(stops) == 1 else stops,
            logits_processor=LogitsProcessorList(held),
            # A row that reached ``stop`` is done: the batch ends when every row is, not at the budget.
            **({"stop_strings": [stop], "tokenizer": self.tokenizer} if stop else {}),
        )
        completions = []
        for prompt, answer_start, row in zip(prompts, answer_starts, output[:, input_ids.shape[1] :].tolist()):
            end = next((index for index, token in enumerate(row) if token in stops), None)
            stopped = end is not None
            tokens = row[:end] if stopped else row
            completions.append(
                Completion(
                    text=(answer_start + self.tokenizer.decode(tokens, skip_special_tokens=True)).strip(),
                    finish_reason="stop" if stopped else "length",
                    prompt_tokens=len(prompt),
                    completion_tokens=len(tokens) + int(stopped),
                )
            )
        return completions
