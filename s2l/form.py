"""The form a skill's examples share, used to keep a small generator or teacher on it.

A 135M model asked for a docstring writes code, and asked for a function writes a paragraph about
one. Given the opening its examples share (the three double quotes of a docstring, ``def`` of a
function) it continues in that form; and an answer that is complete at the ending its examples share
(the closing quotes; the end of a one-paragraph request) is cut there instead of running on. Both
come from the skill's own examples, or, for a skill without them, the opening from what its
skill-level checks demand of every answer's start (``\\A## \\[`` opens a changelog entry with ``## [``);
never from an evals.json case.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from re import _parser as regex_parser  # the standard library's own regex parser
from typing import Any

from s2l.generation import Completion
from s2l.skill import Skill

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


def _literal_prefix(items: Iterable[tuple[Any, Any]]) -> tuple[str, bool]:
    """The literal text a parsed regex sequence must start with, and whether the whole sequence was
    literal (so the text ends where the pattern does)."""
    text = ""
    for op, value in items:
        if op is regex_parser.LITERAL:
            text += chr(value)
        elif op is regex_parser.SUBPATTERN:
            inner, whole = _literal_prefix(value[-1])
            text += inner
            if not whole:
                return text, False
        else:
            return text, False
    return text, True


def anchored_opening(check: dict[str, Any]) -> str:
    """The literal text a ``regex`` check anchored at the answer's start (``\\A``) demands first, cut
    back to whole words where the pattern goes on after it; "" for any other check."""
    if check["type"] != "regex" or check.get("ignore_case"):
        return ""
    items = list(regex_parser.parse(check["pattern"]))
    if not items or items[0] != (regex_parser.AT, regex_parser.AT_BEGINNING_STRING):
        return ""
    text, whole = _literal_prefix(items[1:])
    if not whole and text and text[-1].isalnum():
        text = text[: len(text) - len(re.search(r"\w*$", text).group())]
    return text.rstrip()


@dataclass(frozen=True)
class Form:
    """``opening`` is written as the start of every answer (the answer keeps it, so a student trained
    on it learns to write it unprompted); an answer is complete at the first ``ending`` after it."""

    opening: str = ""
    ending: str = ""

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
        them), the longest opening a skill-level check demands."""
        form = cls.shared_by(answers)
        if form.opening:
            return form
        return replace(form, opening=max((anchored_opening(check) for check in checks), key=len, default=""))

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
