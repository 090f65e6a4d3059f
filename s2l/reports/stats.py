"""Intervals for pass rates: a percentile bootstrap over prompts.

Several answers are sampled per prompt, and answers to one prompt are not independent, so the
prompt is the unit that is resampled: each prompt contributes the share of its answers that pass.
A difference between two conditions is paired: the same resampled prompts on both sides.
"""

from __future__ import annotations

import random
from statistics import fmean
from typing import Any

RESAMPLES = 2000
LEVEL = 0.95


def _percentiles(values: list[float]) -> list[float]:
    ordered = sorted(values)
    tail = (1 - LEVEL) / 2
    return [ordered[int(tail * (len(ordered) - 1))], ordered[round((1 - tail) * (len(ordered) - 1))]]


def bootstrap(per_prompt: list[float], seed: int = 0) -> dict[str, Any]:
    """Mean of per-prompt values with a 95% percentile-bootstrap interval (None for no prompts)."""
    if not per_prompt:
        return {"n": 0, "mean": None, "ci95": None}
    rng = random.Random(seed)
    n = len(per_prompt)
    means = [fmean(per_prompt[rng.randrange(n)] for _ in range(n)) for _ in range(RESAMPLES)]
    return {"n": n, "mean": fmean(per_prompt), "ci95": _percentiles(means)}


def paired_difference(first: list[float], second: list[float], seed: int = 0) -> dict[str, Any]:
    """Mean of ``first - second`` over prompts (paired), with a 95% percentile-bootstrap interval."""
    if len(first) != len(second):
        raise ValueError(f"paired values need the same prompts: {len(first)} and {len(second)}")
    return bootstrap([a - b for a, b in zip(first, second)], seed)
