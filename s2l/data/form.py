"""The form a skill's examples share, used to keep a small generator or teacher on it.

A 135M model asked for a docstring writes code, and asked for a function writes a paragraph about
one. Given the opening its examples share (the three double quotes of a docstring, ``def`` of a
function) it continues in that form; and an answer that is complete at the ending its examples share
(the closing quotes; the end of a one-paragraph request) is cut there instead of running on. Both
come from the skill's own examples; for a skill whose examples share none, the opening comes from
what its skill-level checks demand of every answer's start (``\\A## \\[`` opens a changelog entry with
``## [``), or, where a check allows several (``\\A(feat|fix|...)``), is the one each request calls for (see
s2l/data/synthetic.py: answer_starts). Never from an evals.json case.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from re import _parser as regex_parser  # the standard library's own regex parser
from typing import Any

from s2l.models.backend import Completion
from s2l.skills.checks import anchored_at_start
from s2l.skills.skill import Skill

PARAGRAPH_BREAK = "\n\n"


def _common_prefix(texts: list[str]) -> str:
    length = 0
    while all(len(text) > length and text[length] == texts[0][length] for text in texts):
        length += 1
    return texts[0][:length]


def _whole_words(prefix: str, texts: list[str]) -> str:
    """``prefix`` cut back so that it does not end inside a word of any of ``texts``."""
    continues_a_word = any(len(text) > len(prefix) and text[len(prefix)].isalnum() for text in texts)
    if prefix and prefix[-1].isalnum() and continues_a_word:
        return prefix[: len(prefix) - len(re.search(r"\w*$", prefix).group())]
    return prefix


MAX_OPENINGS = 32


def _openings(items: list[tuple[Any, Any]]) -> tuple[set[str], bool]:
    """The literal texts a parsed regex sequence can start with, branch by branch, and whether each of
    them is the whole sequence; at most MAX_OPENINGS of them (else none)."""
    texts = {""}
    for position, (op, value) in enumerate(items):
        if op is regex_parser.LITERAL:
            texts = {text + chr(value) for text in texts}
            continue
        if op in (regex_parser.ASSERT, regex_parser.ASSERT_NOT):
            continue  # a lookahead reads ahead and consumes nothing
        branches = [list(value[-1])] if op is regex_parser.SUBPATTERN else value[1] if op is regex_parser.BRANCH \
            else None
        if branches is None:
            # Whole words only: a text the pattern may go on to continue with a letter is cut back.
            if _may_open_a_word(items[position:]):
                texts = {text[: len(text) - len(re.search(r"\w*$", text).group())] for text in texts}
            return texts, False
        endings, whole = set(), True
        for branch in branches:
            found, complete = _openings(list(branch))
            endings |= found
            whole = whole and complete
        texts = {text + ending for text in texts for ending in endings}
        if len(texts) > MAX_OPENINGS:
            return set(), False
        if not whole:
            return texts, False
    return texts, True


def _may_open_a_word(items: list[tuple[Any, Any]]) -> bool:
    """Whether what a parsed regex sequence matches may start with a letter or digit (when unsure, yes)."""
    for op, value in items:
        if op is regex_parser.LITERAL:
            return chr(value).isalnum()
        if op in (regex_parser.ASSERT, regex_parser.ASSERT_NOT, regex_parser.AT):
            continue
        if op is regex_parser.SUBPATTERN:
            return _may_open_a_word(list(value[-1]))
        if op is regex_parser.BRANCH:
            return any(_may_open_a_word(list(branch)) for branch in value[1])
        if op in (regex_parser.MAX_REPEAT, regex_parser.MIN_REPEAT):
            low, _, inner = value
            if _may_open_a_word(list(inner)):
                return True
            if low > 0:
                return False
            continue  # it may match nothing: what follows decides
        if op is regex_parser.IN:
            return any(kind is regex_parser.CATEGORY or kind is regex_parser.RANGE or
                       (kind is regex_parser.LITERAL and chr(item).isalnum()) for kind, item in value)
        return True
    return False


def anchored_openings(check: dict[str, Any]) -> tuple[str, ...]:
    """The texts a ``regex`` check anchored at the answer's start (``\\A``) allows first, one per
    alternative (``\\A(feat|fix)`` allows ``feat`` and ``fix``), each cut back to whole words where
    the pattern goes on after it; () for any other check."""
    if check["type"] != "regex" or check.get("ignore_case") or not anchored_at_start(check["pattern"]):
        return ()
    texts, _ = _openings(list(regex_parser.parse(check["pattern"]))[1:])
    return tuple(sorted({text.rstrip() for text in texts if text.strip()}))


@dataclass(frozen=True)
class Form:
    """``opening`` is written as the start of every answer (the answer keeps it, so a student trained
    on it learns to write it unprompted); an answer is complete at the first ``ending`` after it."""

    opening: str = ""
    ending: str = ""
    # Where no one opening is shared: the openings a check allows, one of which starts each answer.
    alternatives: tuple[str, ...] = ()

    @classmethod
    def shared_by(cls, texts: list[str]) -> Form:
        """What two or more example texts share: the opening, cut back to whole words and without
        trailing spaces (a tokenizer writes the space with the next word); the ending, cut forward to
        whole lines; or, when no example holds a blank line, the end of the first paragraph."""
        if len(texts) < 2:
            return cls()
        opening = _whole_words(_common_prefix(texts), texts).rstrip()
        reversed_texts = [text[::-1] for text in texts]
        ending = _whole_words(_common_prefix(reversed_texts), reversed_texts)[::-1].rstrip()
        # A closing line (quotes, a fence), not a shared final period.
        ending = ending[ending.index("\n"):] if "\n" in ending.strip() else ""
        if not ending and not any(PARAGRAPH_BREAK in text.strip() for text in texts):
            ending = PARAGRAPH_BREAK
        return cls(opening if opening.strip() else "", ending)

    @classmethod
    def of_skill(cls, answers: list[str], checks: list[dict[str, Any]]) -> Form:
        """What the skill's example answers share; where they share no opening (fewer than two of
        them), the longest opening a skill-level check demands, or else the openings it allows."""
        form = cls.shared_by(answers)
        if form.opening:
            return form
        demanded = [openings for openings in map(anchored_openings, checks) if openings]
        single = [openings[0] for openings in demanded if len(openings) == 1]
        if single:
            return replace(form, opening=max(single, key=len))
        return replace(form, alternatives=demanded[0] if demanded else ())

    def complete(self, completion: Completion) -> Completion:
        """The completion cut at the first ending after the opening: an answer that reached it is
        finished, even if the model went on until its token budget ran out."""
        if not self.ending:
            return completion
        found = completion.text.find(self.ending, len(self.opening))
        if found < 0:
            return completion
        return replace(completion, text=completion.text[: found + len(self.ending)].strip(), finish_reason="stop")


def answer_shape(text: str, opening: str = "") -> str:
    """What kind of answer ``text`` is, by how it opens after the ``opening`` every answer of the skill
    shares: its first word, lower-cased (``feat`` for ``feat(api)!: ...``, ``scenario`` for
    ``Scenario: ...``), or its opening punctuation (``##``). A build whose kept answers all share one
    shape has collapsed onto one example."""
    text = text[len(opening):] if opening and text.startswith(opening) else text
    first = re.match(r"\s*(?:([^\W_]+)|([^\w\s]+))", text)
    return (first.group(1) or first.group(2)).lower() if first else ""


def shape_limits(shapes: Counter, share: float) -> dict[str, int]:
    """How many answers of each shape to keep so that none takes more than ``share`` of those kept:
    the largest cap that holds, applied to every shape. With one shape only, nothing is capped (no
    choice of answers makes them varied)."""
    if len(shapes) < 2:
        return dict(shapes)
    for cap in range(max(shapes.values()), 0, -1):
        kept = {shape: min(count, cap) for shape, count in shapes.items()}
        if cap <= share * sum(kept.values()):
            return kept
    return {shape: 0 for shape in shapes}


def skill_form(skill: Skill) -> Form:
    """The form of a skill's answers: what its demonstrations share (with or without their requests),
    or the opening its checks demand."""
    return Form.of_skill([example["answer"] for example in skill.examples], skill.checks)
