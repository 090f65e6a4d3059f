"""Bootstrap intervals over prompts (s2l.reports.stats), against what binomial arithmetic expects."""

import pytest

from s2l.reports.stats import bootstrap, paired_difference


def test_a_fair_coin_over_40_prompts_has_the_binomial_width():
    result = bootstrap([1.0, 0.0] * 20)
    assert result["n"] == 40 and result["mean"] == 0.5
    low, high = result["ci95"]
    # Binomial standard error sqrt(0.25 / 40) = 0.079, so the 95% interval is about 0.5 +- 0.155.
    assert 0.31 <= low <= 0.39 and 0.61 <= high <= 0.69


def test_no_spread_no_width():
    assert bootstrap([1.0] * 8)["ci95"] == [1.0, 1.0]
    assert bootstrap([]) == {"n": 0, "mean": None, "ci95": None}


def test_a_paired_difference_cancels_what_the_prompts_share():
    hard = [0.0, 0.25, 0.5, 1.0, 0.75, 0.0, 0.25, 1.0]
    easier = [min(1.0, value + 0.25) for value in hard]
    result = paired_difference(easier, hard)
    assert result["mean"] == pytest.approx(0.1875)
    assert 0 < result["ci95"][0] <= result["mean"] <= result["ci95"][1] <= 0.25
    with pytest.raises(ValueError, match="same prompts"):
        paired_difference([1.0], [1.0, 0.0])
