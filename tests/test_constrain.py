"""Decoding held to a skill's checks (s2l.models.constrain): which checks hold it, and the real model held."""

from __future__ import annotations

import json
from pathlib import Path

from s2l.data.synthetic import teacher_conversation
from s2l.models.backend import Sampling
from s2l.models.constrain import CheckConstraint
from s2l.skills.checks import failed_checks
from s2l.skills.skill import load_skill

ROOT = Path(__file__).resolve().parent.parent
CHANGELOG = load_skill(ROOT / "skills" / "keep-a-changelog")
# A public skill whose output is a JSON object; its table shows slugs only, so no worked example passes.
BRANCHES = load_skill(ROOT / "benchmarks" / "foreign" / "perkzen-branch-naming")
OBJECT_CHECK = BRANCHES.checks[0]
TICKETS = [
    "Ticket SHOP-12 \"Cart total ignores discount codes\", labels: bug. Which branch values?",
    "Starting PLAT-301 \"Upgrade Node to 22\", labels: chore, dependencies.",
    "INF-9: \"Add a dark mode toggle to the settings page\" (story).",
    "Branch for ticket API-44: \"Paginate the orders endpoint\", labels: improvement, backend.",
]


def test_only_regex_checks_anchored_at_the_answers_start_hold_decoding():
    anywhere = {"type": "regex", "pattern": "\"slug\":\\s*\"[a-z-]+\""}
    line_start = {"type": "regex", "pattern": "^feat: "}
    assert CheckConstraint.of_checks([anywhere, line_start, {"type": "not_regex", "pattern": "\\A#"},
                                      {"type": "contains", "pattern": "x"}]) is None
    held = CheckConstraint.of_checks(BRANCHES.checks)
    assert held is not None and [pattern.pattern for pattern in held.patterns] == [OBJECT_CHECK["pattern"]]


def test_an_answer_so_far_may_go_on_only_while_it_can_still_match():
    held = CheckConstraint.of_checks([OBJECT_CHECK])
    for prefix in ["", "  ", "{", "{\"type\": \"f", "{\"type\": \"chore\", \"slug\": \"Bump Node",
                   "{\"type\": \"fix\", \"slug\": \"a-b\", \"preview\": tr"]:
        assert held.may_become(prefix), prefix
    for dead in ["Sure", "{\"type\": \"bug", "{\"type\": \"fix\", \"slug\": \"a\nb",
                 "{\"type\": \"fix\", \"slug\": \"a-b\", \"preview\": true} and more"]:
        assert not held.may_become(dead), dead
    assert not held.matches("{\"type\": \"fix\", \"slug\": \"a-b\", \"preview\": tr")
    assert held.matches("{\"type\": \"fix\", \"slug\": \"a-b\", \"preview\": true}\n")
    ignoring_case = CheckConstraint.of_checks([{"type": "regex", "pattern": "\\AScenario:", "ignore_case": True}])
    assert ignoring_case.may_become("scen") and not ignoring_case.may_become("Given")


def test_the_held_model_writes_only_answers_the_check_allows(local_backend):
    """SmolLM2-135M shown only the SKILL.md writes prose, not the object (a seed search found none of
    128); held, every answer that ends is the object, and the type and preview are still its choice.
    On both engines: llama.cpp's samples in its own loop, held by the same rule."""
    backend = local_backend(8)
    conversations = [teacher_conversation(BRANCHES, ticket) for ticket in TICKETS for _ in range(2)]
    sampling = Sampling(temperature=0.7, top_p=0.95, max_new_tokens=64)
    free = backend.complete(conversations, sampling, seed=0)
    held = backend.complete(conversations, sampling, seed=0, constraint=CheckConstraint.of_checks(BRANCHES.checks))
    assert sum(not failed_checks([OBJECT_CHECK], completion.text) for completion in free) <= 1
    ended = [completion for completion in held if completion.finish_reason == "stop"]
    assert len(ended) >= len(held) // 2
    for completion in ended:
        assert failed_checks([OBJECT_CHECK], completion.text) == [], completion.text
        assert set(json.loads(completion.text)) == {"type", "slug", "preview"}
    for completion in held:
        if completion.finish_reason == "length":  # cut off by the token budget, never out of the form
            assert CheckConstraint.of_checks([OBJECT_CHECK]).may_become(completion.text)


def test_a_length_limit_written_as_a_lookahead_holds_too():
    """The ``regex`` module calls any text a partial match of a pattern whose lookahead reaches the
    text's end; the check is held with the lookahead as a pattern of its own."""
    header = {"type": "regex", "pattern": "\\A(?=[^\\n]{1,20}(\\n|\\Z))(feat|fix)(\\([^()\\s]+\\))?: \\S[^\\n]*"}
    held = CheckConstraint.of_checks([header])
    assert held.may_become("fix(ui): add") and held.may_become("feat: keep the cache\n\nwhy")
    assert not held.may_become("bug: x")  # no such type
    assert not held.may_become("feat: keep the cache warm")  # 25 characters on the first line
    assert not held.matches("feat: ") and held.matches("feat: a")


def test_an_answer_ends_where_its_check_ends_the_answer_not_a_line():
    """keep-a-changelog's first check ends with ``$``, the end of the heading's line: past it the
    answer goes on; a JSON object's check ends the answer after the closing brace."""
    heading = CheckConstraint.of_checks(CHANGELOG.checks)
    assert heading.matches("## [1.4.0] - 2024-03-02") and heading.may_go_on("## [1.4.0] - 2024-03-02")
    assert not CheckConstraint.of_checks([OBJECT_CHECK]).may_go_on("{\"type\": \"fix\", \"slug\": \"a-b\", \"preview\": true}")


def test_a_held_changelog_entry_goes_on_past_its_heading(local_backend):
    """Held to the heading check, the teacher used to stop after the heading: blank space was all the
    check allowed next, and an answer that may only go on with blank space ended there."""
    backend = local_backend(4)
    requests = ["Version 3.1.0, 2024-05-20. Added CSV export to the report view. Fixed the broken login redirect.",
                "Release 0.9.2 on 2023-11-02. Removed the legacy sync endpoint. Fixed a memory leak in the cache."]
    examples = [{"request": pair["request"], "answer": pair["answer"]} for pair in CHANGELOG.worked_pairs]
    held = backend.complete([teacher_conversation(CHANGELOG, request, examples) for request in requests],
                            Sampling(temperature=0.7, top_p=0.95, max_new_tokens=96), seed=0,
                            answer_start="## [", constraint=CheckConstraint.of_checks(CHANGELOG.checks))
    for completion in held:
        assert "\n### " in completion.text, completion.text
