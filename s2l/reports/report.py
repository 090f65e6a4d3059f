"""Aggregate benchmark over every skill's eval report: JSON, a Markdown table and a chart; and one
skill's eval report as Markdown.

Win counts are decided on the paired 95% interval of the adapter's pass rate minus another
condition's, not on point estimates: the adapter *matches or beats* a condition when the interval's
upper end is at least 0 (it is not clearly worse), and *beats* it when the lower end is above 0. A
skill on which every condition passes nothing says nothing either way: it is reported as
uninformative and left out of the win counts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from s2l.reports.evaluate import CONDITIONS, CONTROLS, mean_or_none
from s2l.reports.stats import bootstrap

SUMMED_USAGE = ("requests", "sent", "retries", "cache_hits", "prompt_tokens", "completion_tokens", "wall_seconds")
SIDE_BY_SIDE = 3  # held-out prompts, and evals.json cases, an eval report shows with every condition's first answer
FENCE = "~~~~"  # answers may hold ``` fences of their own
LABELS = {"no_skill": "no skill", "skill_in_context": "skill in context", "adapter": "adapter",
          "wrong_adapter": "wrong adapter", "shared_adapter": "shared adapter"}
ALL_CONDITIONS = CONDITIONS + CONTROLS


def skill_row(report: dict[str, Any], controls: dict[str, Any] | None = None) -> dict[str, Any]:
    """One skill's figures; a condition it did not run (controls off, or no other skill for a wrong
    adapter) is None."""
    conditions = {**report["conditions"], **(controls["conditions"] if controls else {})}

    def per_condition(value) -> dict[str, Any]:
        return {c: value(conditions[c]) if c in conditions else None for c in ALL_CONDITIONS}

    return {
        "skill": report["skill"]["key"],
        "engine": report["settings"]["engine"],
        "pass_rate": per_condition(lambda c: c["pass_rate"]["all"]["mean"]),
        "pass_rate_ci95": per_condition(lambda c: c["pass_rate"]["all"]["ci95"]),
        "differences": {**report["differences"], **(controls["differences"] if controls else {})},
        "wrong_adapter": controls["adapters"].get("wrong_adapter") if controls else None,
        "checked_prompts": conditions["adapter"]["pass_rate"]["all"]["n"],
        "samples_per_prompt": report["samples_per_prompt"],
        "reference_nll": per_condition(lambda c: c["reference_nll"]["all"]),
        "prompt_tokens": per_condition(lambda c: c["prompt_tokens"]),
        "wall_seconds_per_request": per_condition(lambda c: c["wall_seconds_per_request"]),
        "expectations": per_condition(lambda c: c["expectations"]),
        "token_saving": report["token_saving"],
        "informative": any(conditions[c]["pass_rate"]["all"]["mean"] for c in conditions),
    }


def at_least(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and a >= b


def matches_or_beats(difference: dict[str, Any]) -> bool:
    return difference["ci95"] is not None and difference["ci95"][1] >= 0


def beats(difference: dict[str, Any]) -> bool:
    return difference["ci95"] is not None and difference["ci95"][0] > 0


def generation_totals(usage: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per role, the sum over skills of what generating their data took; a cost only where every
    skill has one (a price was configured)."""
    totals = {}
    for role in sorted({role for roles in usage.values() for role in roles}):
        entries = [roles[role] for roles in usage.values() if role in roles]
        costs = [entry["estimated_cost"] for entry in entries]
        totals[role] = {
            "backend": entries[0]["backend"], "model": entries[0]["model"],
            **({"engine": entries[0]["engine"]} if "engine" in entries[0] else {}),
            **{name: round(sum(entry[name] for entry in entries), 2) for name in SUMMED_USAGE},
            "estimated_cost": None if None in costs else round(sum(costs), 6),
        }
    return totals


def mean_gap(rows: list[dict[str, Any]], name: str) -> float | None:
    """Mean over skills of the adapter's paired difference ``name`` (None where no skill has it)."""
    return mean_or_none([r["differences"][name]["mean"] for r in rows
                         if name in r["differences"] and r["differences"][name]["mean"] is not None])


def expectation_totals(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Expectation verdicts summed over skills; ungraded ones never count as passed."""
    counts = {name: sum(s[name] for s in summaries) for name in ("total", "graded", "passed", "ungraded")}
    return {**counts, "pass_rate": counts["passed"] / counts["graded"] if counts["graded"] else None}


def summarize(reports: list[dict[str, Any]], usage: dict[str, dict[str, Any]] | None = None,
              controls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``usage``: per skill, its ``build/synthetic/<skill>.usage.json`` (what generation cost);
    ``controls``: the skills' ``build/eval/controls/<skill>.json`` reports."""
    control_of = {c["skill"]["key"]: c for c in controls or []}
    rows = [skill_row(r, control_of.get(r["skill"]["key"])) for r in sorted(reports, key=lambda r: r["skill"]["key"])]
    for row in rows:
        row["generation"] = (usage or {}).get(row["skill"])
    n = len(rows)
    informative = [r for r in rows if r["informative"]]

    def nll_wins(other: str) -> int:
        return sum(at_least(r["reference_nll"][other], r["reference_nll"]["adapter"]) for r in rows)

    return {
        "skills": n,
        "rows": rows,
        "informative_skills": len(informative),
        "uninformative_skills": [r["skill"] for r in rows if not r["informative"]],
        "wins": {
            "adapter_matches_or_beats_skill_in_context": sum(
                matches_or_beats(r["differences"]["adapter_minus_skill_in_context"]) for r in informative),
            "adapter_beats_no_skill": sum(beats(r["differences"]["adapter_minus_no_skill"]) for r in informative),
            **{f"adapter_beats_{control}": sum(beats(r["differences"][f"adapter_minus_{control}"]) for r in informative
                                                if f"adapter_minus_{control}" in r["differences"])
               for control in CONTROLS},
            "nll_adapter_le_skill_in_context": nll_wins("skill_in_context"),
            "nll_adapter_le_no_skill": nll_wins("no_skill"),
        },
        # Over informative skills: how much the own adapter's pass rate exceeds each control's.
        "control_gaps": {control: mean_gap(informative, f"adapter_minus_{control}") for control in CONTROLS},
        "control_skills": {control: sum(f"adapter_minus_{control}" in r["differences"] for r in informative)
                           for control in CONTROLS},
        # Over skills: each skill's pass rate counts once, with a bootstrap interval over skills.
        "mean_pass_rate": {c: bootstrap([r["pass_rate"][c] for r in rows if r["pass_rate"][c] is not None])
                           for c in ALL_CONDITIONS},
        "expectations": {c: expectation_totals([r["expectations"][c] for r in rows if r["expectations"][c]])
                         for c in ALL_CONDITIONS},
        "mean_prompt_tokens_saved": sum(r["token_saving"]["prompt_tokens_per_request"] for r in rows) / n if n else 0,
        "generation": generation_totals({r["skill"]: r["generation"] for r in rows if r["generation"]}),
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def rate_text(mean: float | None, interval: list[float] | None) -> str:
    """A pass rate with its 95% interval, as the tables show it."""
    return "–" if mean is None else f"{mean:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]"


def _difference(difference: dict[str, Any]) -> str:
    mean, interval = difference["mean"], difference["ci95"]
    return "–" if mean is None else f"{mean:+.2f} [{interval[0]:+.2f}, {interval[1]:+.2f}]"


def markdown(summary: dict[str, Any]) -> str:
    n, informative = summary["skills"], summary["informative_skills"]
    wins = summary["wins"]
    uninformative = summary["uninformative_skills"]
    shown = [c for c in ALL_CONDITIONS if summary["mean_pass_rate"][c]["n"]]
    compared = [c for c in shown if c != "adapter"]
    lines = [
        "| skill | " + " | ".join(f"pass rate: {LABELS[c]}" for c in shown) + " | "
        + " | ".join(f"adapter − {LABELS[c]}" for c in compared)
        + " | ref. NLL: no skill | skill in context | adapter | prompt tokens saved |",
        "|---" * (1 + len(shown) + len(compared) + 4) + "|",
    ]
    for row in summary["rows"]:
        p, ci, nll, d = row["pass_rate"], row["pass_rate_ci95"], row["reference_nll"], row["differences"]
        lines.append(
            f"| {row['skill']} | " + " | ".join(rate_text(p[c], ci[c]) for c in shown) + " | "
            + " | ".join(_difference(d[f"adapter_minus_{c}"]) if f"adapter_minus_{c}" in d else "–" for c in compared)
            + f" | {_fmt(nll['no_skill'])} | {_fmt(nll['skill_in_context'])} | {_fmt(nll['adapter'])} "
            f"| {row['token_saving']['prompt_tokens_per_request']:.0f} ({row['token_saving']['fraction']:.0%}) |"
        )
    means = summary["mean_pass_rate"]
    lines.append("| **mean over skills** | " + " | ".join(rate_text(means[c]["mean"], means[c]["ci95"]) for c in shown)
                 + " |" + " |" * (len(compared) + 4))
    lines += [
        "",
        f"- Check pass rate (paired 95% interval over prompts): the adapter matches or beats the full skill text "
        f"on {wins['adapter_matches_or_beats_skill_in_context']} of {informative} informative skills; beats no "
        f"skill on {wins['adapter_beats_no_skill']} of {informative}."
        + (f" Uninformative (every condition passed nothing): {', '.join(uninformative)}." if uninformative else ""),
    ]
    for control in CONTROLS:
        if summary["control_skills"][control]:
            lines.append(f"- Against the {LABELS[control]} control: the skill's own adapter beats it on "
                         f"{wins[f'adapter_beats_{control}']} of {summary['control_skills'][control]} informative "
                         f"skills; mean gap {_fmt(summary['control_gaps'][control])}.")
    graded = {c: summary["expectations"][c] for c in shown if summary["expectations"][c]["total"]}
    if graded:
        lines.append("- evals.json expectations passed (of graded; ungraded never count): " + "; ".join(
            f"{LABELS[c]} {e['passed']} of {e['graded']} ({e['ungraded']} ungraded)" for c, e in graded.items()) + ".")
    lines += [
        f"- Reference NLL, adapter at most skill in context on {wins['nll_adapter_le_skill_in_context']} of {n}; "
        f"at most no skill on {wins['nll_adapter_le_no_skill']} of {n}.",
        f"- Mean prompt tokens saved per request against skill in context: {summary['mean_prompt_tokens_saved']:.0f}.",
    ]
    engines = sorted({row["engine"] for row in summary["rows"]})
    if engines:
        lines.append("- Evaluation answers written by " + "; ".join(
            f"{engine}: {', '.join(row['skill'] for row in summary['rows'] if row['engine'] == engine)}"
            for engine in engines) + ".")
    lines.append("")
    if summary["generation"]:
        lines += ["Generating the data, all skills:", "",
                  "| role | backend | model | requests sent | from the request cache | retries | prompt tokens "
                  "| completion tokens | wall time | estimated cost |", "|---|---|---|---|---|---|---|---|---|---|"]
        for role, total in summary["generation"].items():
            cost = "–" if total["estimated_cost"] is None else f"{total['estimated_cost']:.4f}"
            backend = f"{total['backend']} ({total['engine']})" if "engine" in total else total["backend"]
            lines.append(f"| {role} | {backend} | {total['model']} | {total['sent']} | {total['cache_hits']} "
                         f"| {total['retries']} | {total['prompt_tokens']:,} | {total['completion_tokens']:,} "
                         f"| {total['wall_seconds']:.0f} s | {cost} |")
        lines.append("")
    return "\n".join(lines)


def error_bar(value: float | None, interval: list[float | None] | None) -> tuple[float, float]:
    """How far an interval reaches below and above its value (nothing where there is no value)."""
    if value is None or interval is None or None in interval:
        return 0.0, 0.0
    return value - interval[0], interval[1] - value


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["rows"]
    means = summary["mean_pass_rate"]
    shown = [c for c in ALL_CONDITIONS if means[c]["n"]]
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    width = 0.8 / len(shown)
    # Pass rates per skill and their mean over skills, each with its 95% interval as an error bar.
    groups = [row["skill"] for row in rows] + ["mean over skills"]
    for offset, condition in enumerate(shown):
        values = [row["pass_rate"][condition] for row in rows] + [means[condition]["mean"]]
        bounds = [row["pass_rate_ci95"][condition] for row in rows] + [means[condition]["ci95"]]
        below, above = zip(*map(error_bar, values, bounds))
        axes[0].bar([i + offset * width for i in range(len(groups))], [value or 0 for value in values], width,
                    yerr=[below, above], capsize=2, label=LABELS[condition])
    axes[0].set_xticks([i + width * (len(shown) - 1) / 2 for i in range(len(groups))], groups, rotation=20)
    axes[0].set_title("check pass rate, 95% interval (higher is better)")
    for offset, condition in enumerate(shown):
        axes[1].bar([i + offset * width for i in range(len(rows))],
                    [row["reference_nll"][condition] or 0 for row in rows], width, label=LABELS[condition])
    axes[1].set_xticks([i + width * (len(shown) - 1) / 2 for i in range(len(rows))], [row["skill"] for row in rows],
                       rotation=20)
    axes[1].set_title("reference NLL (lower is better)")
    figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=len(shown), frameon=False)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _verdict(answer: dict[str, Any]) -> str:
    if answer["passed"] is None:
        return "no checks"
    verdict = f"{sum(answer['passed'])} of {len(answer['passed'])} sampled answers pass"
    failed = answer.get("failed_checks") or []
    return verdict + "".join(f"; fails: {check}" for check in failed)


def result_sentence(report: dict[str, Any], markdown_path: Path) -> str:
    """One skill's eval result in one plain sentence, as a build ends with it: the adapter's check pass
    rate beside the other conditions', on which kind of prompt it falls short, and where the report is."""
    rates = {condition: report["conditions"][condition]["pass_rate"] for condition in CONDITIONS}
    adapter = rates["adapter"]
    if adapter["all"]["mean"] is None:
        return f"{report['skill']['key']}: no check scored its answers (evals.json has none). Report: {markdown_path}"
    kinds = ", ".join(f"{name} {_fmt(adapter[source]['mean'])}" for source, name in
                      (("held_out", "held-out requests"), ("evals", "evals.json cases")) if adapter[source]["n"])
    failed = Counter(check for answer in report["conditions"]["adapter"]["answers"] if answer["source"] == "evals"
                     for check in answer.get("failed_checks", []))
    weakest = ""
    if failed:
        check, count = failed.most_common(1)[0]
        weakest = f"; on evals.json cases it most often fails \"{check}\" ({count} of {report['prompts']['evals']})"
    return (f"{report['skill']['key']}: the adapter passes {rate_text(adapter['all']['mean'], adapter['all']['ci95'])} "
            f"of checks ({kinds}), the skill in context "
            f"{rate_text(rates['skill_in_context']['all']['mean'], rates['skill_in_context']['all']['ci95'])}, no skill "
            f"{rate_text(rates['no_skill']['all']['mean'], rates['no_skill']['all']['ci95'])}{weakest}. "
            f"Report: {markdown_path}")


def result_sentences(reports: list[Path]) -> list[str]:
    """The result sentence of each eval report, naming the report for people beside it: what a build
    ends with."""
    return [result_sentence(json.loads(path.read_text(encoding="utf-8")), path.with_suffix(".md")) for path in reports]


def shown_side_by_side(answers: list[dict[str, Any]]) -> list[int]:
    """Which prompts the report shows: the first held-out ones (checked by the skill-level checks only)
    and the evals.json cases the adapter fails most (their own checks test content too), so that a
    reader sees where the form was learned and the content was not."""
    held_out = [n for n, answer in enumerate(answers) if answer["source"] == "held_out"][:SIDE_BY_SIDE]
    cases = [n for n, answer in enumerate(answers) if answer["source"] == "evals"]
    cases.sort(key=lambda n: sum(answers[n]["passed"]) / len(answers[n]["passed"]) if answers[n]["passed"] else 1)
    return held_out + sorted(cases[:SIDE_BY_SIDE])


def eval_markdown(report: dict[str, Any]) -> str:
    """One skill's eval report for people: per condition the pass rates with intervals, the paired
    differences, and the first answers of each condition to a few prompts, side by side."""
    conditions = report["conditions"]
    prompts = report["prompts"]
    lines = [
        f"# {report['skill']['key']}: evaluation", "",
        f"{prompts['held_out']} held-out requests and {prompts['evals']} evals.json prompts, "
        f"{report['samples_per_prompt']} sampled answers per prompt and condition, written by "
        f"{report['settings']['engine']}. Check pass rate: the mean over "
        f"prompts of the share of answers passing every check, with a 95% bootstrap interval over prompts.", "",
        "| condition | pass rate, all | held-out | evals.json | expectations passed / graded (ungraded) "
        "| reference NLL | prompt tokens | seconds per request |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for condition in CONDITIONS:
        values = conditions[condition]
        rates = [rate_text(values["pass_rate"][source]["mean"], values["pass_rate"][source]["ci95"])
                 for source in ("all", "held_out", "evals")]
        expected = values["expectations"]
        lines.append(f"| {LABELS[condition]} | {' | '.join(rates)} "
                     f"| {expected['passed']} / {expected['graded']} ({expected['ungraded']}) "
                     f"| {_fmt(values['reference_nll']['all'])} | {values['prompt_tokens']:.0f} "
                     f"| {values['wall_seconds_per_request']:.2f} |")
    judge = report["judge"]
    lines += ["", f"Judge of the evals.json expectations: {judge['label']}, {judge['sent']} requests."
              if judge else "No judge is configured (evaluate.judge): every evals.json expectation is ungraded."]
    differences, saving = report["differences"], report["token_saving"]
    lines += [
        "",
        f"Adapter − skill in context: {_difference(differences['adapter_minus_skill_in_context'])}; adapter − no "
        f"skill: {_difference(differences['adapter_minus_no_skill'])} (paired over prompts). The adapter saves "
        f"{saving['prompt_tokens_per_request']:.0f} prompt tokens per request ({saving['fraction']:.0%}).",
        "",
        "## Answers side by side",
    ]
    sources = {"held_out": "held-out request, skill-level checks", "evals": "evals.json case, its own checks too"}
    for index in shown_side_by_side(conditions["adapter"]["answers"]):
        first = conditions["adapter"]["answers"][index]
        lines += ["", f"### {first['id']} ({sources[first['source']]})", "", FENCE, first["request"], FENCE]
        for condition in CONDITIONS:
            answer = conditions[condition]["answers"][index]
            lines += ["", f"**{LABELS[condition]}** ({_verdict(answer)}):", "", FENCE, answer["answers"][0], FENCE]
    return "\n".join(lines) + "\n"
