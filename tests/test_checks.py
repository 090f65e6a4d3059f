"""Machine checks: s2l.skills.checks."""

from __future__ import annotations

import pytest

from s2l.skills.checks import check_passes, failed_checks

TEXT = "Header line\nsecond line\nThe End"


def check(kind: str, pattern: str, **extra) -> dict:
    return {"type": kind, "pattern": pattern, **extra}


@pytest.mark.parametrize(
    "kind, pattern, expected",
    [
        ("regex", r"second \w+", True),
        ("regex", r"third", False),
        ("not_regex", r"second \w+", False),
        ("not_regex", r"third", True),
        ("contains", "line\nsec", True),
        ("contains", "Second", False),
        ("not_contains", "The End", False),
        ("not_contains", "the end", True),
        # contains is a plain substring, never a regex
        ("contains", "l.ne", False),
        ("contains", "Header line", True),
    ],
)
def test_each_check_type(kind, pattern, expected):
    assert check_passes(check(kind, pattern), TEXT) is expected


@pytest.mark.parametrize(
    "pattern, expected",
    [
        (r"^second", True),  # ^ matches at every line start (MULTILINE)
        (r"line$", True),  # $ matches at every line end
        (r"^The End$", True),
        (r"\Asecond", False),  # \A only at the very start
        (r"\AHeader", True),
        (r"line\Z", False),  # \Z only at the very end
        (r"End\Z", True),
    ],
)
def test_regex_anchors_are_multiline(pattern, expected):
    assert check_passes(check("regex", pattern), TEXT) is expected
    assert check_passes(check("not_regex", pattern), TEXT) is not expected


def test_dot_does_not_cross_lines():
    assert not check_passes(check("regex", r"Header.*second"), TEXT)


@pytest.mark.parametrize("kind", ["regex", "contains"])
def test_ignore_case(kind):
    assert not check_passes(check(kind, "HEADER"), TEXT)
    assert not check_passes(check(kind, "HEADER", ignore_case=False), TEXT)
    assert check_passes(check(kind, "HEADER", ignore_case=True), TEXT)


@pytest.mark.parametrize("kind", ["not_regex", "not_contains"])
def test_ignore_case_negated(kind):
    assert check_passes(check(kind, "HEADER"), TEXT)
    assert not check_passes(check(kind, "HEADER", ignore_case=True), TEXT)


def test_unknown_type_raises():
    with pytest.raises(ValueError, match="glob"):
        check_passes(check("glob", "*"), TEXT)


def test_failed_checks_lists_only_failures_in_order():
    checks = [
        check("contains", "Header", description="has a header"),
        check("regex", r"^third", description="has a third line"),
        check("not_contains", "End"),
        check("not_regex", r"^second"),
        check("contains", "xyz", description=""),
    ]
    assert failed_checks(checks, TEXT) == [
        "has a third line",
        "not_contains 'End'",
        "not_regex '^second'",
        "contains 'xyz'",
    ]


def test_failed_checks_empty_when_all_pass():
    assert failed_checks([check("contains", "Header"), check("not_regex", r"\Asecond")], TEXT) == []
    assert failed_checks([], TEXT) == []


def test_failed_checks_accepts_any_iterable():
    assert failed_checks((c for c in [check("contains", "zzz")]), TEXT) == ["contains 'zzz'"]
