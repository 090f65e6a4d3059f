"""Overlap between texts: word n-gram near-duplicates, so that nothing the evaluation scores reaches
the teacher or the training data in a lightly reworded form; and the code names an answer uses that
its request does not hold (invented)."""

from __future__ import annotations

import re

SHINGLE_WORDS = 3
NEAR_DUPLICATE = 0.5  # share of the shorter text's word 3-grams found in the other ...
MIN_SHARED = 5  # ... and at least this many of them (or all of a shorter text's): stock phrases do not count
MIN_COPY_WORDS = 3  # a shorter answer found in the skill text (`## [Unreleased]`) may be what it should say
_WORD = re.compile(r"\w+")


def normalize(text: str) -> str:
    """Key for exact-duplicate detection: case and whitespace do not make a request new."""
    return " ".join(text.lower().split())


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class CopyFilter:
    """Whether a text copies a source (the skill text): shares a run of ``n`` consecutive words with it
    or, shorter than that, appears in it whole. A 9-word worked example given as the answer to an
    unrelated request holds no 12-word run, and is still a copy."""

    def __init__(self, source: str, n: int) -> None:
        self.n = n
        self.runs = word_ngrams(source, n)
        self.source = f" {' '.join(source.lower().split())} "

    def copies(self, text: str) -> bool:
        words = text.lower().split()
        if len(words) >= self.n:
            return not self.runs.isdisjoint(word_ngrams(text, self.n))
        return len(words) >= MIN_COPY_WORDS and f" {' '.join(words)} " in self.source


def shingles(text: str) -> frozenset[tuple[str, ...]]:
    """Word 3-grams of the text, punctuation and case ignored (single words for very short texts)."""
    words = _WORD.findall(text.lower())
    if len(words) < SHINGLE_WORDS:
        return frozenset((word,) for word in words)
    return frozenset(tuple(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1))


def overlap(a: frozenset, b: frozenset) -> float:
    """Containment of the smaller shingle set in the larger: 1.0 when one text repeats the other."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


class NearDuplicates:
    """Texts seen so far; ``find`` says whether a new one nearly repeats any of them."""

    def __init__(self, texts: list[str] = (), threshold: float = NEAR_DUPLICATE) -> None:
        self.threshold = threshold
        self._seen: list[frozenset] = [shingles(text) for text in texts]

    def find(self, text: str) -> bool:
        candidate = shingles(text)
        return any(overlap(candidate, seen) >= self.threshold
                   and len(candidate & seen) >= min(MIN_SHARED, len(candidate), len(seen)) for seen in self._seen)

    def add(self, text: str) -> None:
        self._seen.append(shingles(text))


# Names of code entities a text can use: CamelCase of two parts or more (``ValueError``,
# ``UserRepository``) and snake_case (``max_length``, ``fetch_all``).
CODE_NAME = re.compile(r"\b(?:[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+|[a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b")


def invented_names(request: str, answer: str) -> list[str]:
    """The code names ``answer`` uses that ``request`` does not hold: a small teacher copies them from
    the examples it was shown (a ``Raises: ValueError`` on a function that raises nothing, a parameter
    the function does not take), and a student trained on them invents them too."""
    given = set(_WORD.findall(request))
    return sorted({name for name in CODE_NAME.findall(answer) if name not in given})
