"""The benchmark's account of what generating the data cost (s2l.reports.report), on hand-made usage files."""

from __future__ import annotations

from s2l.reports.report import generation_totals, markdown, summarize


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
    summary = {**summarize([]), "generation": generation_totals(USAGE)}
    text = markdown(summary)
    assert "| generator | openai | gpt-x | 23 | 5 | 2 | 3,000 | 1,000 | 21 s | 0.0300 |" in text
    assert "| teacher | openai | gpt-x | 32 | 4 | 2 | 24,000 | 3,000 | 21 s | – |" in text
    assert "Generating the data" not in markdown({**summary, "generation": {}})
    local = {"alpha": {"teacher": {**role(14, 0, 2000, 600, None), "backend": "local", "engine": "llama.cpp"}}}
    assert "| teacher | local (llama.cpp) | gpt-x | 14 |" in markdown({**summary, "generation": generation_totals(local)})


def eval_report(key: str, means: dict[str, float], adapter_minus: tuple[float, float],
                engine: str = "llama.cpp") -> dict:
    """A hand-made eval report: pass-rate means per condition, and the paired interval of the adapter
    minus either other condition."""
    conditions = {c: {"pass_rate": {"all": {"mean": m, "ci95": [m, m], "n": 10}}, "reference_nll": {"all": 1.0},
                      "prompt_tokens": 80.0, "wall_seconds_per_request": 0.5,
                      "expectations": {"total": 6, "graded": 4, "passed": 3, "ungraded": 2, "pass_rate": 0.75}}
                  for c, m in means.items()}
    difference = {"mean": sum(adapter_minus) / 2, "ci95": list(adapter_minus), "n": 10}
    return {"skill": {"key": key}, "settings": {"engine": engine}, "conditions": conditions,
            "samples_per_prompt": 3, "judge": None,
            "differences": {f"adapter_minus_{c}": difference for c in means if c != "adapter"},
            "token_saving": {"prompt_tokens_per_request": 400.0, "fraction": 0.8}}


def controls_report(key: str, wrong: float | None, shared: float, adapter_minus: tuple[float, float]) -> dict:
    means = {"shared_adapter": shared, **({"wrong_adapter": wrong} if wrong is not None else {})}
    report = eval_report(key, means, adapter_minus)
    report["adapters"] = {c: f"build/adapters/{c}" for c in means}
    return report


def test_the_controls_join_their_skills_rows_and_gaps_count_only_where_they_ran() -> None:
    good = eval_report("learnt", {"no_skill": 0.0, "skill_in_context": 0.1, "adapter": 0.5}, (0.2, 0.6))
    other = eval_report("other", {"no_skill": 0.0, "skill_in_context": 0.3, "adapter": 0.3}, (-0.2, 0.2),
                        engine="transformers")
    controls = [controls_report("learnt", 0.1, 0.2, (0.1, 0.5)),  # adapter clearly beats both controls
                controls_report("other", None, 0.3, (-0.1, 0.1))]  # no wrong adapter; ties the shared one
    summary = summarize([good, other], controls=controls)
    rows = {row["skill"]: row for row in summary["rows"]}
    assert rows["learnt"]["pass_rate"]["wrong_adapter"] == 0.1
    assert rows["other"]["pass_rate"]["wrong_adapter"] is None
    assert summary["control_skills"] == {"wrong_adapter": 1, "shared_adapter": 2}
    assert summary["wins"]["adapter_beats_wrong_adapter"] == 1
    assert summary["wins"]["adapter_beats_shared_adapter"] == 1
    assert summary["control_gaps"]["shared_adapter"] == (0.3 + 0.0) / 2
    assert summary["mean_pass_rate"]["shared_adapter"]["mean"] == (0.2 + 0.3) / 2
    assert summary["mean_pass_rate"]["wrong_adapter"]["n"] == 1
    text = markdown(summary)
    assert "beats it on 1 of 1 informative skills; mean gap 0.30" in text  # wrong adapter
    assert "| pass rate: wrong adapter | pass rate: shared adapter |" in text
    assert "- Evaluation answers written by llama.cpp: learnt; transformers: other." in text


def test_a_skill_where_every_condition_passes_nothing_is_uninformative_not_a_match() -> None:
    from s2l.reports.report import summarize

    zero = eval_report("all-zero", {"no_skill": 0.0, "skill_in_context": 0.0, "adapter": 0.0}, (0.0, 0.0))
    good = eval_report("learnt", {"no_skill": 0.0, "skill_in_context": 0.1, "adapter": 0.5}, (0.2, 0.6))
    summary = summarize([zero, good])
    assert (summary["skills"], summary["informative_skills"], summary["uninformative_skills"]) == (2, 1, ["all-zero"])
    assert summary["wins"]["adapter_matches_or_beats_skill_in_context"] == 1
    assert summary["wins"]["adapter_beats_no_skill"] == 1
    text = markdown(summary)
    assert "matches or beats the full skill text on 1 of 1 informative skills" in text
    assert "Uninformative (every condition passed nothing): all-zero." in text


def test_the_eval_markdown_shows_rates_and_answers_side_by_side() -> None:
    from s2l.reports.report import eval_markdown

    report = eval_report("learnt", {"no_skill": 0.0, "skill_in_context": 0.1, "adapter": 0.5}, (0.2, 0.6))
    report["prompts"] = {"held_out": 1, "evals": 1}
    for condition, values in report["conditions"].items():
        for source in ("held_out", "evals"):
            values["pass_rate"][source] = {"mean": None, "ci95": None, "n": 0}
        values["answers"] = [{"id": f"p{i}", "source": "held_out", "request": f"Request {i}",
                              "passed": [True, False], "answers": [f"{condition} answer {i}", "later sample"]}
                             for i in range(4)]
        # evals.json cases: e1 fails both samples, e2 one, e0 and e3 none.
        values["answers"] += [{"id": f"e{i}", "source": "evals", "request": f"Case {i}", "passed": passed,
                               "failed_checks": ["The type is fix."] if False in passed else [],
                               "answers": [f"{condition} case answer {i}"]}
                              for i, passed in enumerate([[True, True], [False, False], [True, False], [True, True]])]
    text = eval_markdown(report)
    assert "3 sampled answers per prompt and condition, written by llama.cpp." in text
    assert "| adapter | 0.50 [0.50, 0.50] | – | – | 3 / 4 (2) | 1.00 | 80 | 0.50 |" in text
    assert "every evals.json expectation is ungraded" in text
    assert "Adapter − skill in context: +0.40 [+0.20, +0.60]" in text
    assert text.count("### p") == 3  # three held-out prompts side by side, not all four
    # ... and three evals.json cases, those the adapter fails first, with the check that failed.
    assert [line for line in text.splitlines() if line.startswith("### e")] == [
        "### e0 (evals.json case, its own checks too)", "### e1 (evals.json case, its own checks too)",
        "### e2 (evals.json case, its own checks too)"]
    assert "**adapter** (0 of 2 sampled answers pass; fails: The type is fix.):\n\n~~~~\nadapter case answer 1" in text
    assert "~~~~\nRequest 2\n~~~~" in text and "Request 3" not in text
    assert "**skill in context** (1 of 2 sampled answers pass):\n\n~~~~\nskill_in_context answer 1\n~~~~" in text
    assert "later sample" not in text


def test_a_build_ends_with_the_result_in_one_sentence_and_where_the_report_is() -> None:
    from pathlib import Path

    from s2l.reports.report import result_sentence

    report = eval_report("commits", {"no_skill": 0.0, "skill_in_context": 0.1, "adapter": 0.56}, (0.3, 0.8))
    report["prompts"] = {"held_out": 2, "evals": 2}
    adapter = report["conditions"]["adapter"]["pass_rate"]
    adapter["held_out"] = {"mean": 0.95, "ci95": [0.9, 1.0], "n": 2}
    adapter["evals"] = {"mean": 0.21, "ci95": [0.0, 0.5], "n": 2}
    report["conditions"]["adapter"]["answers"] = [
        {"source": "held_out", "failed_checks": ["No trailing period."]},
        {"source": "evals", "failed_checks": ["The type is fix.", "Names issue #412."]},
        {"source": "evals", "failed_checks": ["The type is fix."]},
    ]
    assert result_sentence(report, Path("build/eval/commits.md")) == (
        "commits: the adapter passes 0.56 [0.56, 0.56] of checks (held-out requests 0.95, evals.json cases 0.21), "
        "the skill in context 0.10 [0.10, 0.10], no skill 0.00 [0.00, 0.00]; on evals.json cases it most often "
        "fails \"The type is fix.\" (2 of 2). Report: build/eval/commits.md")
    for values in report["conditions"].values():  # a skill without checks: nothing scored
        values["pass_rate"]["all"] = {"mean": None, "ci95": None, "n": 0}
    assert result_sentence(report, Path("build/eval/commits.md")) == (
        "commits: no check scored its answers (evals.json has none). Report: build/eval/commits.md")
