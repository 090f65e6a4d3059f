"""Decoding held to a skill's checks: a teacher answer that can only go on as the checks allow.

A check anchored at the answer's start (``\\A\\{\\s*"type": "(feat|fix|chore)", ...\\}\\s*\\Z``) says
what the whole answer is. With no worked example to imitate, SmolLM2-135M given only the SKILL.md
almost never writes it: a seed search tried 128 answers for each of two public skills and found no
passing one. Held to the check token by token, every answer that ends has the form, and what the
model still chooses is what a check cannot say (the type the request calls for, the slug's words).

How: before each token is sampled, the likeliest candidates are tried in order and a candidate is
kept only if the answer with it can still become a match (the ``regex`` module's partial matching);
the rest are masked. The end of the answer is allowed only once every such check matches in full.
Checks not anchored at the start (``"slug": "[a-z-]+"`` may match anywhere) are not held: any
text could still go on to match them, so they are left to grading, as are ``not_regex`` and
substring checks. Only the local backend decodes token by token; an endpoint is not held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import regex

from s2l.skills.checks import anchored_at_start

if TYPE_CHECKING:
    import torch

# Candidates tried per token before a wider search: a held model mostly wants an allowed token.
FIRST_CANDIDATES = 32
WIDER_CANDIDATES = 1024
# What a complete answer might go on with after blank space: if a check still allows any of these
# there, the answer need not end (the `$` of `\A## \[...\] - \d{4}-\d{2}-\d{2}$` ends a line, not the answer).
GOING_ON = tuple("aA0#-*{[(<`\"'")


def _group_end(pattern: str, start: int) -> int:
    """The index just past the group that opens at ``pattern[start]`` (escapes and classes skipped)."""
    depth, index, in_class = 0, start, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 1
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            # A "]" first in a class ("[]a]", "[^]a]") is one of its characters, not its end.
            index += len(regex.match(r"\[\^?\]?", pattern[index:]).group()) - 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    raise ValueError(f"unbalanced group in {pattern!r}")


def split_leading_lookaheads(pattern: str) -> tuple[str, list[str]]:
    """``\\A(?=[^\\n]{1,59}\\n)feat...`` as ``\\Afeat...`` and ``[\\A[^\\n]{1,59}\\n]``: each lookahead at
    the start as a pattern of its own. The ``regex`` module calls any text a partial match of a pattern
    whose lookahead reaches the text's end (``bug: x`` could still become ``feat: ...``); apart, each
    part's partial match is exact, and a text may go on when every part may."""
    lookaheads = []
    while pattern.startswith("\\A(?="):
        end = _group_end(pattern, 2)
        lookaheads.append("\\A" + pattern[5:end - 1])
        pattern = "\\A" + pattern[end:]
    return pattern, lookaheads


@dataclass(frozen=True)
class CheckConstraint:
    """The skill-level ``regex`` checks anchored at the answer's start: as written, for the answer's
    end; split (``split_leading_lookaheads``), for partial matching as it is written."""

    patterns: tuple[regex.Pattern, ...]
    partial_patterns: tuple[regex.Pattern, ...]

    @classmethod
    def of_checks(cls, checks: Iterable[dict[str, Any]]) -> CheckConstraint | None:
        """The constraint the checks set, or None when none of them is anchored at the start."""
        patterns, partial_patterns = [], []
        for check in checks:
            if check["type"] != "regex" or not anchored_at_start(check["pattern"]):
                continue
            flags = regex.MULTILINE | (regex.IGNORECASE if check.get("ignore_case") else 0)
            patterns.append(regex.compile(check["pattern"], flags))
            main, lookaheads = split_leading_lookaheads(check["pattern"])
            partial_patterns += [regex.compile(part, flags) for part in (main, *lookaheads)]
        return cls(tuple(patterns), tuple(partial_patterns)) if patterns else None

    def may_become(self, text: str) -> bool:
        """Whether ``text`` (an answer so far) can still be continued into one every check matches."""
        text = text.lstrip()
        return all(pattern.search(text, partial=True) is not None for pattern in self.partial_patterns)

    def may_go_on(self, text: str) -> bool:
        """Whether ``text``, an answer every check matches, may still go on past blank space."""
        return any(self.may_become(text + gap + going_on) for gap in (" ", "\n") for going_on in GOING_ON)

    def matches(self, text: str) -> bool:
        """Whether ``text`` as a whole answer matches every check (the answer may end here)."""
        text = text.strip()
        return all(pattern.search(text) is not None for pattern in self.patterns)


class HeldToChecks:
    """Masks every next token that would take an answer out of what ``constraint`` allows; the stop
    tokens only once the answer matches (and nothing but them once only blank space could follow).
    Rows whose answer has ended (a stop token) are left alone, and a row with no allowed token at all
    may only stop (its answer then fails the checks, as it would have). Called, a logits processor as
    ``generate`` calls one (it uses only the tensors' own methods, so that this module and the data
    layer that builds a constraint load no torch); ``allowed_next`` serves an engine that samples in
    its own loop (s2l/models/llamacpp.py)."""

    def __init__(self, constraint: CheckConstraint, tokenizer, texts: list[str], prompt_width: int,
                 answer_starts: list[str], stops: Iterable[int]) -> None:
        self.constraint = constraint
        self.tokenizer = tokenizer
        self.token_texts = texts  # per token id (see token_texts)
        self.prompt_width = prompt_width
        self.answer_starts = answer_starts
        self.stops = sorted(set(stops))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        vocabulary = scores.shape[1]
        for row, ids in enumerate(input_ids[:, self.prompt_width:].tolist()):
            if any(token in self.stops for token in ids):
                continue
            text = self.answer_starts[row] + self.tokenizer.decode(ids, skip_special_tokens=True)
            row_scores = scores[row]
            allowed = self.allowed_next(text, lambda limit: row_scores.topk(min(limit, vocabulary)).indices.tolist(),
                                        vocabulary)
            mask = row_scores.new_full(row_scores.shape, float("-inf"))
            mask[allowed] = 0
            scores[row] = row_scores + mask
        return scores

    def allowed_next(self, text: str, likeliest: Callable[[int], list[int]], vocabulary: int) -> list[int]:
        """The tokens that may follow ``text``, an answer so far that has not ended; ``likeliest(n)``
        gives the ids of the n likeliest next tokens, best first (any engine's logits can say that)."""
        allowed = self._allowed(text, likeliest, vocabulary)
        if self.constraint.matches(text):
            # A complete answer that may only go on with blank space ends: held after its closing
            # brace, SmolLM2-135M otherwise writes newlines until its token budget runs out.
            ends = all(not self.token_texts[token].strip() for token in allowed) \
                and not self.constraint.may_go_on(text)
            allowed = self.stops if ends else allowed + self.stops
        return allowed or self.stops

    def _allowed(self, text: str, likeliest: Callable[[int], list[int]], vocabulary: int) -> list[int]:
        """The tokens after ``text`` that keep it a possible match, among the likeliest first."""
        tried = 0
        for limit in (FIRST_CANDIDATES, WIDER_CANDIDATES, vocabulary):
            candidates = likeliest(min(limit, vocabulary))[tried:]
            allowed = [token for token in candidates if token not in self.stops
                       and self.constraint.may_become(text + self.token_texts[token])]
            if allowed:
                return allowed
            tried = limit
        return []


def token_texts(tokenizer) -> list[str]:
    """Each token id's text (some 50k decodes: a backend computes them once)."""
    return tokenizer.batch_decode([[token] for token in range(len(tokenizer))], skip_special_tokens=True)
