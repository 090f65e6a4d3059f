"""Machine checks from evals.json: score an answer without a judge model."""

from __future__ import annotations

import re
from collections.abc import Iterable
from re import _parser as regex_parser  # the standard library's own regex parser
from typing import Any


def check_passes(check: dict[str, Any], text: str) -> bool:
    """One check: regex / not_regex use re.search with MULTILINE; (not_)contains are substrings."""
    kind, pattern = check["type"], check["pattern"]
    ignore_case = bool(check.get("ignore_case"))
    if kind in ("regex", "not_regex"):
        flags = re.MULTILINE | (re.IGNORECASE if ignore_case else 0)
        found = re.search(pattern, text, flags) is not None
        return found if kind == "regex" else not found
    haystack, needle = (text.lower(), pattern.lower()) if ignore_case else (text, pattern)
    if kind == "contains":
        return needle in haystack
    if kind == "not_contains":
        return needle not in haystack
    raise ValueError(f"unknown check type {kind!r}")


def failed_checks(checks: Iterable[dict[str, Any]], text: str) -> list[str]:
    """Descriptions of the checks ``text`` fails; empty when it passes all of them."""
    return [
        check.get("description") or f"{check['type']} {check['pattern']!r}"
        for check in checks
        if not check_passes(check, text)
    ]


def anchored_at_start(pattern: str) -> bool:
    """Whether a regex matches only at the answer's start (opens with ``\\A``): it says what the whole
    answer is, not what it holds somewhere."""
    items = list(regex_parser.parse(pattern))
    return bool(items) and items[0] == (regex_parser.AT, regex_parser.AT_BEGINNING_STRING)
