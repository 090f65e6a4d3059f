"""What every generation backend takes and gives: decoding settings, a completion, the usage counts
and their cost, and the ``Backend`` protocol that the local backend (s2l/models/generation.py) and
the ``openai`` one (s2l/models/endpoint.py) follow. No torch: the data layer reads these without
loading a model."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol

from s2l.models.chat import Message

if TYPE_CHECKING:
    from s2l.models.constrain import CheckConstraint


@dataclass(frozen=True)
class Sampling:
    """Decoding settings; temperature 0 means greedy."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 128


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop": ended its turn; "length": cut at max_new_tokens
    prompt_tokens: int
    completion_tokens: int


def token_cost(prompt_tokens: int, completion_tokens: int, price: dict[str, float] | None) -> float | None:
    """What the tokens cost at ``price`` per million prompt and completion tokens (None without a price)."""
    if price is None:
        return None
    return round((prompt_tokens * price["prompt"] + completion_tokens * price["completion"]) / 1e6, 6)


@dataclass
class Usage:
    """What one role's backend did in a build: the accounting behind a dataset's cost."""

    requests: int = 0  # completions asked for
    sent: int = 0  # of those, sent to the model (not answered from the request cache)
    retries: int = 0  # extra attempts after a 429, a 5xx or a dropped connection
    cache_hits: int = 0
    prompt_tokens: int = 0  # of the requests sent
    completion_tokens: int = 0
    wall_seconds: float = 0.0

    def add(self, completions: list[Completion], started: float) -> None:
        self.prompt_tokens += sum(c.prompt_tokens for c in completions)
        self.completion_tokens += sum(c.completion_tokens for c in completions)
        self.wall_seconds += time.monotonic() - started

    def summary(self, price: dict[str, float] | None = None) -> dict[str, float | int | None]:
        """The counts, and with a price per million prompt and completion tokens, the estimated cost."""
        return {**asdict(self), "wall_seconds": round(self.wall_seconds, 2),
                "estimated_cost": token_cost(self.prompt_tokens, self.completion_tokens, price)}


def earlier_turns(messages: list[Message]) -> tuple[tuple[str, str], ...]:
    """A conversation's turns before its last, as a key."""
    return tuple((message["role"], message["content"]) for message in messages[:-1])


def opening_scores(log_likelihoods: Callable[[list[list[Message]], list[str]], list[float]],
                   conversations: list[list[Message]], openings: tuple[str, ...], calibrated: bool) -> list[list[float]]:
    """``Backend.opening_scores`` of a backend whose ``log_likelihoods(conversations, openings)`` gives
    each opening's summed log-likelihood after its conversation."""
    asked = list(conversations)
    if calibrated:
        # One request that says nothing per distinct set of earlier turns (one per round, in practice).
        empty = {earlier_turns(messages): [*messages[:-1], {"role": "user", "content": ""}]
                 for messages in conversations}
        asked += list(empty.values())
    pairs = [(messages, opening) for messages in asked for opening in openings]
    scores = log_likelihoods([messages for messages, _ in pairs], [opening for _, opening in pairs])
    rows = [scores[n * len(openings):(n + 1) * len(openings)] for n in range(len(asked))]
    if calibrated:
        baseline = dict(zip(empty, rows[len(conversations):]))
        rows = [[score - prior for score, prior in zip(row, baseline[earlier_turns(messages)])]
                for row, messages in zip(rows, conversations)]
    return rows[:len(conversations)]


class Backend(Protocol):
    model_id: str
    usage: Usage

    def complete(
        self, conversations: list[list[Message]], sampling: Sampling, seed: int, desc: str = "",
        answer_start: str | list[str] = "", stop: str = "", json_schema: dict | None = None,
        constraint: CheckConstraint | None = None,
    ) -> list[Completion]:
        """One completion per conversation. ``answer_start`` (one for all, or one per conversation) is
        written as the opening of the answer and the model continues from it; each completion's text
        includes it (a backend that cannot prefill an answer ignores it). Generation may end once an
        answer holds ``stop`` (the text keeps it; whatever follows is the caller's to cut).
        ``json_schema``: the answer is asked to be JSON of that schema, where the backend can enforce it.
        ``constraint``: decoding is held to those checks, where the backend decodes token by token."""

    def opening_scores(self, conversations: list[list[Message]], openings: tuple[str, ...],
                       calibrated: bool = False) -> list[list[float]] | None:
        """Per conversation, the log-likelihood of each of ``openings`` as the start of its answer
        (for decoding held to what a check allows first); None where the backend cannot prefill an
        answer. With ``calibrated``, for this request rather than for any: minus the opening's
        log-likelihood after a request that says nothing (contextual calibration)."""
