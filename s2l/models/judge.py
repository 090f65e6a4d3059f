"""The judge: grades answers against the natural-language ``expectations`` of evals.json cases.

One request per answer: a rubric as the system prompt, then the request, the answer and the numbered
expectations; the judge replies with a structured verdict per expectation (JSON, enforced through
``response_format`` where the endpoint supports it). A reply that is not exactly one boolean verdict
per expectation grades nothing: those expectations stay **ungraded**, and an ungraded expectation is
never counted as passed. With no judge configured every expectation is ungraded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from s2l.models.backend import Backend, Sampling
from s2l.models.chat import Message, json_answer

RUBRIC = (
    "You grade an assistant's answer against a list of expectations. For each numbered expectation, decide "
    "from the answer alone whether it is met; when unsure, it is not met. Reply with JSON only, one verdict "
    'per expectation in order: {"verdicts": [{"expectation": 1, "passed": true, "evidence": "..."}]}'
)
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"verdicts": {"type": "array", "items": {
        "type": "object",
        "properties": {"expectation": {"type": "integer"}, "passed": {"type": "boolean"},
                       "evidence": {"type": "string"}},
        "required": ["expectation", "passed", "evidence"],
        "additionalProperties": False}}},
    "required": ["verdicts"],
    "additionalProperties": False,
}
Verdicts = list[bool | None]  # per expectation: passed, failed, or ungraded


def judge_conversation(request: str, answer: str, expectations: list[str]) -> list[Message]:
    listed = "\n".join(f"{number}. {text}" for number, text in enumerate(expectations, 1))
    return [{"role": "system", "content": RUBRIC},
            {"role": "user", "content": f"Request:\n{request}\n\nAnswer:\n{answer}\n\nExpectations:\n{listed}"}]


def parse_verdicts(text: str, count: int) -> Verdicts:
    """One boolean per expectation from the judge's reply, or all ungraded (None) when the reply is not
    exactly ``count`` verdicts numbered 1..count with a boolean ``passed`` each."""
    ungraded: Verdicts = [None] * count
    value = json_answer(text)
    verdicts = value.get("verdicts") if isinstance(value, dict) else None
    if not isinstance(verdicts, list) or len(verdicts) != count:
        return ungraded
    graded: Verdicts = []
    for number, verdict in enumerate(verdicts, 1):
        if not (isinstance(verdict, dict) and verdict.get("expectation") == number
                and isinstance(verdict.get("passed"), bool)):
            return ungraded
        graded.append(verdict["passed"])
    return graded


@dataclass(frozen=True)
class Judge:
    """A configured judge role: its backend and sampling, and how reports name it."""

    backend: Backend
    sampling: Sampling
    backend_name: str  # "local" | "openai"
    price: dict[str, float] | None = None  # per million prompt and completion tokens

    @property
    def label(self) -> str:
        weak = " (the local base model: a weak judge, read its grades with care)" if self.backend_name == "local" else ""
        return f"{self.backend_name}: {self.backend.model_id}{weak}"

    def grade(self, items: list[tuple[str, str, list[str]]], seed: int) -> list[Verdicts]:
        """Verdicts for each (request, answer, expectations)."""
        if not items:
            return []
        completions = self.backend.complete([judge_conversation(*item) for item in items], self.sampling, seed,
                                            desc="judge", json_schema=VERDICT_SCHEMA)
        return [parse_verdicts(c.text, len(item[2])) for c, item in zip(completions, items)]


def expectation_summary(verdicts: list[Verdicts]) -> dict[str, Any]:
    """Counts over every (answer, expectation): passed among graded; ungraded counted apart, never as passed."""
    flat = [v for answer in verdicts for v in answer]
    graded = [v for v in flat if v is not None]
    return {"total": len(flat), "graded": len(graded), "passed": sum(graded), "ungraded": len(flat) - len(graded),
            "pass_rate": sum(graded) / len(graded) if graded else None}
