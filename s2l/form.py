"""The form a skill's examples share, used to keep a small generator or teacher on it.

A 135M model asked for a docstring writes code, and asked for a function writes a paragraph about
one. Given the opening its examples share (the three double quotes of a docstring, ``def`` of a
function) it continues in that form; and an answer that is complete at the ending its examples share
(the closing quotes; the end of a one-paragraph request) is cut there instead of running on. Both
come from the skill's own examples only, never from an evals.json case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from s2l.generation import Completion

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

    def complete(self, completion: Completion) -> Completion:
        """The completion cut at the first ending after the opening: an answer that reached it is
        finished, even if the model went on until its token budget ran out."""
        if not self.ending:
            return completion
        found = completion.text.find(self.ending, len(self.opening))
        if found < 0:
            return completion
        return replace(completion, text=completion.text[: found + len(self.ending)].strip(), finish_reason="stop")
