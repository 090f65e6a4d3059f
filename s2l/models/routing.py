"""Which skill a request needs: the request matched against each skill's name and description, as
an agent harness triggers a skill, to pick the adapter that answers it (``model: auto`` on the
server). The match is TF-IDF cosine similarity over words; below ``threshold`` no skill matches and
the base model answers. Plain and inspectable: every score can be printed, and the benchmark
(benchmarks/routing.py) measures accuracy and false triggers on prompts the router never saw.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

WORD = re.compile(r"[a-z0-9]+")
# Words that say nothing about a task; left out so that they cannot decide a match.
STOPWORDS = frozenset(
    "a an and are as at be by for from has have how i in is it its me my of on or our please so that the "
    "their them this to use used uses using was we what when which while will with write you your".split())
# A request whose best match scores below this goes to no skill. Chosen on benchmarks/routing.py's
# requests: every request of a served skill there scores at least 0.22, and 11 of 12 of no skill below 0.16.
DEFAULT_THRESHOLD = 0.2


def words(text: str) -> list[str]:
    """Lowercase words without stopwords, a plural ``s`` taken off (commits, commit: one word)."""
    found = (word for word in WORD.findall(text.lower()) if word not in STOPWORDS)
    return [word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
            for word in found]


@dataclass(frozen=True)
class Route:
    skill: str | None  # None: no skill matched, the base model answers
    scores: dict[str, float]


class Router:
    """Routes a request to the skill whose ``name`` and ``description`` it matches best."""

    def __init__(self, skills: dict[str, str], threshold: float = DEFAULT_THRESHOLD) -> None:
        """``skills``: skill key -> the text it is matched on (its name and description)."""
        self.threshold = threshold
        documents = {key: Counter(words(f"{key.replace('-', ' ')} {text}")) for key, text in skills.items()}
        frequency = Counter(word for counts in documents.values() for word in counts)
        count = len(documents)
        # Smoothed IDF, as scikit-learn's TfidfVectorizer: a word in every skill still counts a little.
        self.idf = {word: math.log((1 + count) / (1 + seen)) + 1 for word, seen in frequency.items()}
        self.vectors = {key: self._vector(counts) for key, counts in documents.items()}

    def _vector(self, counts: Counter) -> dict[str, float]:
        weights = {word: n * self.idf[word] for word, n in counts.items() if word in self.idf}
        norm = math.sqrt(sum(value * value for value in weights.values())) or 1.0
        return {word: value / norm for word, value in weights.items()}

    def route(self, request: str) -> Route:
        query = self._vector(Counter(words(request)))
        scores = {key: sum(weight * vector.get(word, 0.0) for word, weight in query.items())
                  for key, vector in self.vectors.items()}
        best = max(scores, key=scores.__getitem__, default=None)
        return Route(best if best is not None and scores[best] >= self.threshold else None, scores)
