"""The judge of evals.json expectations (s2l.models.judge) and how verdicts are counted (s2l.reports.evaluate):
a verdict counts only when the judge's reply is exactly the structured answer asked for, and an
ungraded expectation is never a pass."""

from __future__ import annotations

import json

import pytest

from s2l.models.judge import expectation_summary, judge_conversation, parse_verdicts
from s2l.reports.evaluate import EvalPrompt, grade_expectations


def reply(*passed: bool, numbers: list[int] | None = None) -> str:
    numbers = numbers or list(range(1, len(passed) + 1))
    return json.dumps({"verdicts": [{"expectation": n, "passed": p, "evidence": "e"} for n, p in zip(numbers, passed)]})


@pytest.mark.parametrize(("text", "count", "expected"), [
    (reply(True, False), 2, [True, False]),
    ("```json\n" + reply(False, True, True) + "\n```", 3, [False, True, True]),
    (reply(True), 2, [None, None]),  # one verdict for two expectations
    (reply(True, True, numbers=[2, 1]), 2, [None, None]),  # out of order
    ('{"verdicts": [{"expectation": 1, "passed": "yes", "evidence": ""}]}', 1, [None]),  # not a boolean
    ("The answer meets expectation 1.", 1, [None]),  # prose, not the JSON asked for
    ('["verdicts"]', 1, [None]),
])
def test_a_verdict_counts_only_when_it_is_the_json_asked_for(text: str, count: int, expected: list) -> None:
    assert parse_verdicts(text, count) == expected


def test_ungraded_expectations_are_counted_apart_and_never_as_passed() -> None:
    summary = expectation_summary([[True, None], [False, True], [None, None]])
    assert summary == {"total": 6, "graded": 3, "passed": 2, "ungraded": 3, "pass_rate": pytest.approx(2 / 3)}
    assert expectation_summary([[None, None]]) == {"total": 2, "graded": 0, "passed": 0, "ungraded": 2,
                                                   "pass_rate": None}


def test_without_a_judge_every_expectation_of_every_answer_is_ungraded() -> None:
    prompts = [EvalPrompt("evals-1", "evals", "Write a commit message.", "fix: x", (), ("Type is fix.", "No period.")),
               EvalPrompt("held-1", "held_out", "Another request.", "feat: y", ())]
    answers = [{"id": "evals-1", "request": "Write a commit message.", "answers": ["fix: a", "fix: b"]},
               {"id": "held-1", "request": "Another request.", "answers": ["feat: c", "feat: d"]}]
    conditions = {"adapter": {"answers": answers}}
    grade_expectations(conditions, prompts, judge=None, seed=0)
    assert answers[0]["expectations"] == [[None, None], [None, None]]
    assert "expectations" not in answers[1]  # a held-out request has none
    assert conditions["adapter"]["expectations"] == {"total": 4, "graded": 0, "passed": 0, "ungraded": 4,
                                                     "pass_rate": None}


def test_the_judge_sees_the_request_the_answer_and_every_expectation_numbered() -> None:
    system, user = judge_conversation("Write a commit message.", "fix: handle empty email", ["Type is fix.", "Short."])
    assert system["role"] == "system" and "JSON" in system["content"]
    assert user["content"] == ("Request:\nWrite a commit message.\n\nAnswer:\nfix: handle empty email\n\n"
                               "Expectations:\n1. Type is fix.\n2. Short.")
