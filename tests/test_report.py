"""The benchmark's account of what generating the data cost (s2l.report), on hand-made usage files."""

from __future__ import annotations

from s2l.report import generation_totals, markdown


def role(sent: int, hits: int, prompt: int, completion: int, cost: float | None) -> dict:
    return {"backend": "openai", "model": "gpt-x", "requests": sent + hits, "sent": sent, "retries": 1,
            "cache_hits": hits, "prompt_tokens": prompt, "completion_tokens": completion, "wall_seconds": 10.5,
            "estimated_cost": cost}


USAGE = {
    "alpha": {"generator": role(14, 0, 2000, 600, 0.01), "teacher": role(20, 4, 15000, 2000, 0.25)},
    "beta": {"generator": role(9, 5, 1000, 400, 0.02), "teacher": role(12, 0, 9000, 1000, None)},
}


def test_generation_is_summed_per_role_and_a_cost_only_where_every_skill_has_one() -> None:
    totals = generation_totals(USAGE)
    assert totals["generator"] == {"backend": "openai", "model": "gpt-x", "requests": 28, "sent": 23, "retries": 2,
                                   "cache_hits": 5, "prompt_tokens": 3000, "completion_tokens": 1000,
                                   "wall_seconds": 21.0, "estimated_cost": 0.03}
    assert totals["teacher"]["sent"] == 32 and totals["teacher"]["cache_hits"] == 4
    assert totals["teacher"]["estimated_cost"] is None


def test_the_markdown_shows_the_generation_table_only_when_there_is_usage() -> None:
    summary = {"skills": 0, "rows": [], "mean_prompt_tokens_saved": 0, "generation": generation_totals(USAGE),
               "wins": {"adapter_matches_or_beats_skill_in_context": 0, "adapter_beats_no_skill": 0,
                        "nll_adapter_le_skill_in_context": 0, "nll_adapter_le_no_skill": 0}}
    text = markdown(summary)
    assert "| generator | openai | gpt-x | 23 | 5 | 2 | 3,000 | 1,000 | 21 s | 0.0300 |" in text
    assert "| teacher | openai | gpt-x | 32 | 4 | 2 | 24,000 | 3,000 | 21 s | – |" in text
    assert "Generating the data" not in markdown({**summary, "generation": {}})
